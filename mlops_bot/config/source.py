"""Safe reading of ml.yaml: size limit, one mapping document, no duplicate keys, bounded nesting and alias
expansion (enforced while composing: `compose`), merge keys, `${VAR}` interpolation, and the line and column
of every key and value for error messages."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError, Problem
from ..support.environment import is_forbidden
from .compose import (
    CONSTRUCTION_ERRORS,
    MAX_DEPTH,
    MAX_NODES,
    MAX_NUMBER_CHARS,
    LimitError,
    YamlPath,
    compose,
    explain,
    unreadable,
)

MAX_BYTES = 1024 * 1024  # a config is hand-written; anything larger is a mistake or an attack
__all__ = ["MAX_BYTES", "MAX_DEPTH", "MAX_NODES", "Document", "YamlPath", "dotted", "read_document"]

_INTERPOLATION = re.compile(r"\$(?:\$|\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\})")
_SAFE_SCALARS = {"null", "bool", "int", "float", "str"}
_COLLECTION_TAGS = {"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"}
_MERGE = "tag:yaml.org,2002:merge"


@dataclass
class Document:
    """A parsed YAML mapping with positions (1-based line and column) of values and of keys."""

    file: str
    data: dict[str, Any]
    raw: bytes
    root: Path
    values: dict[YamlPath, tuple[int, int]] = field(default_factory=dict)
    keys: dict[YamlPath, tuple[int, int]] = field(default_factory=dict)

    def where(self, path: YamlPath, key: bool = False) -> tuple[int, int]:
        """Position of `path` (of its key if asked and known), else of the nearest located parent."""
        table = self.keys if key else self.values
        while path:
            if path in table:
                return table[path]
            if path in self.values:
                return self.values[path]
            path = path[:-1]
        return self.values.get((), (1, 1))

    def problem(self, path: YamlPath, message: str, key: bool = False) -> Problem:
        line, col = self.where(path, key)
        return Problem(self.file, line, col, dotted(path), message)


def dotted(path: YamlPath, limit: int = 120) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out if len(out) <= limit else out[: limit - 3] + "..."


def _shown(value: object, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 4] + "...'"


def read_document(path: Path, env: Mapping[str, str] | None = None) -> Document:
    import os

    shown = str(path)
    try:
        if not path.is_file():
            what = "is a directory" if path.is_dir() else "does not exist"
            raise ConfigError([Problem(shown, 1, 1, "", f"the file {what}; create it or pass -c FILE")])
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise ConfigError([Problem(shown, 1, 1, "", f"the file is {size} bytes, over the limit of {MAX_BYTES}")])
        raw = path.read_bytes()
    except (OSError, ValueError) as exc:  # a name too long, no permission, a NUL in the name
        why = getattr(exc, "strerror", None) or str(exc)
        raise ConfigError([Problem(shown[:300], 1, 1, "", f"cannot read the file ({why}); check the path")]) from None
    text = _decode(raw, shown)
    node = _compose(text, shown)
    doc = Document(shown, {}, raw, path.resolve().parent)
    converter = _Converter(doc, os.environ if env is None else env)
    data = converter.convert(node, ())
    if converter.problems:
        raise ConfigError(list(dict.fromkeys(converter.problems)))  # a merged mapping's problems only once
    if not isinstance(data, dict):
        kind = type(data).__name__ if data is not None else "nothing"
        what = "the document must be a mapping of keys (version, model, pipeline, ...)"
        raise ConfigError([doc.problem((), f"{what}, not {kind}")])
    doc.data = data
    return doc


def _decode(raw: bytes, shown: str) -> str:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError([Problem(shown, 1, 1, "", f"the file is not UTF-8 text (byte {exc.start})")]) from None
    if not text.strip():
        raise ConfigError([Problem(shown, 1, 1, "", "the file is empty; start with `version: 1`")])
    return text


def _compose(text: str, shown: str) -> yaml.Node:
    try:
        node, second = compose(text)
    except LimitError as exc:
        raise ConfigError([Problem(shown, exc.line, exc.col, dotted(exc.path), exc.message)]) from None
    except yaml.YAMLError as exc:
        line, col, message = explain(exc, text)
        bad_line = text.splitlines()[line - 1] if 0 < line <= len(text.splitlines()) else ""
        if "\t" in bad_line:
            message += "; tabs are not allowed in YAML indentation, use spaces"
        raise ConfigError([Problem(shown, line, col, "", message)]) from None
    if second is not None:
        message = "a second YAML document starts here; ml.yaml holds one: remove this `---` or what follows it"
        raise ConfigError([Problem(shown, second.line + 1, second.column + 1, "", message)])
    if node is None:
        raise ConfigError([Problem(shown, 1, 1, "", "the file holds no YAML document (only comments?); start "
                                   "with `version: 1`")])
    return node


class _Converter:
    """Node graph -> plain data, recording positions; problems are collected, not raised one by one."""

    def __init__(self, doc: Document, env: Mapping[str, str]) -> None:
        self.doc = doc
        self.env = env
        self.problems: list[Problem] = []
        self.budget = MAX_NODES
        self.scalars = yaml.SafeLoader("")

    def convert(self, node: yaml.Node, path: YamlPath) -> Any:
        self.budget -= 1
        if self.budget < 0 or len(path) > MAX_DEPTH:  # `compose` stops both first; this keeps the recursion safe
            if self.budget == -1 or len(path) == MAX_DEPTH + 1:
                self.problems.append(self._at(node, path, f"the document expands to more than {MAX_NODES} values "
                                              f"or {MAX_DEPTH} levels (aliases?); write it out plainly"))
            return None
        self.doc.values.setdefault(path, (node.start_mark.line + 1, node.start_mark.column + 1))
        if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)) and node.tag not in _COLLECTION_TAGS:
            self.problems.append(self._at(node, path, f"unsupported YAML tag {node.tag}"))
            return None
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            return [self.convert(item, (*path, i)) for i, item in enumerate(node.value)]
        assert isinstance(node, yaml.ScalarNode)
        return self._scalar(node, path)

    def _mapping(self, node: yaml.MappingNode, path: YamlPath) -> dict[str, Any]:
        out: dict[str, Any] = {}
        first_line: dict[str, int] = {}
        merges = []
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                self.problems.append(self._at(key_node, path, "keys must be plain strings"))
                continue
            key = self._text(str(key_node.value), key_node, path)  # keys stay strings: `on:` is not true here
            key_path: YamlPath = (*path, key)
            if key in first_line:
                message = f"duplicate key '{key}' (first at line {first_line[key]})"
                self.problems.append(self._at(key_node, key_path, message))
                continue
            first_line[key] = key_node.start_mark.line + 1
            if key_node.tag == _MERGE:
                merges.append(value_node)
                continue
            self.doc.keys.setdefault(key_path, (key_node.start_mark.line + 1, key_node.start_mark.column + 1))
            out[key] = self.convert(value_node, key_path)
        return self._merged(merges[0], path, out) if merges else out

    def _merged(self, node: yaml.Node, path: YamlPath, explicit: dict[str, Any]) -> dict[str, Any]:
        """`<<: *defaults` (or a list of anchors): their keys, the earlier anchors' and the explicit ones winning."""
        merged: dict[str, Any] = {}
        sources = node.value if isinstance(node, yaml.SequenceNode) else [node]
        for source in sources:
            if not isinstance(source, yaml.MappingNode):
                kind = "a list" if isinstance(source, yaml.SequenceNode) else f"the value {_shown(source.value)}"
                self.problems.append(self._at(source, (*path, "<<"), "the merge key `<<` takes a mapping or a list "
                                              f"of mappings (such as `<<: *defaults`), not {kind}"))
        for source in reversed(sources):
            value = self.convert(source, path) if isinstance(source, yaml.MappingNode) else None
            merged.update(value if isinstance(value, dict) else {})
        return {**merged, **explicit}

    def _scalar(self, node: yaml.ScalarNode, path: YamlPath) -> Any:
        kind = node.tag.rsplit(":", 1)[-1]
        if kind == "bool" and node.value.lower() not in ("true", "false"):
            kind = "str"  # YAML 1.2: yes/no/on/off are strings
        if kind == "timestamp":
            kind = "str"
        if kind not in _SAFE_SCALARS:
            self.problems.append(self._at(node, path, f"unsupported YAML tag {node.tag}"))
            return None
        if kind == "str":
            return self._text(self._interpolate(str(node.value), node, path), node, path)
        if kind in ("int", "float") and len(node.value) > MAX_NUMBER_CHARS:
            self.problems.append(self._at(node, path, unreadable(node, None)))
            return None
        try:
            value = self.scalars.yaml_constructors[f"tag:yaml.org,2002:{kind}"](self.scalars, node)
        except CONSTRUCTION_ERRORS as exc:  # `!!int abc`, `!!float ''`
            self.problems.append(self._at(node, path, unreadable(node, exc)))
            return None
        if isinstance(value, float) and not math.isfinite(value):
            self.problems.append(self._at(node, path, f"{node.value} is not a finite number"))
        return value

    def _text(self, text: str, node: yaml.Node, path: YamlPath) -> str:
        """A string no file name, command, URL or log line can hold is refused here, once."""
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            self.problems.append(self._at(node, path, "the text holds a lone surrogate (an escape such as "
                                          "\\ud800); remove it"))
            return ""
        if "\x00" in text:
            self.problems.append(self._at(node, path, "the text holds a NUL character (\\0 or \\x00); remove it"))
            return ""
        return text

    def _interpolate(self, text: str, node: yaml.Node, path: YamlPath) -> str:
        def substitute(match: re.Match[str]) -> str:
            if match.group(0) == "$$":
                return "$"
            name, default = match.group(1), match.group(2)
            if is_forbidden(name):  # a pull request edits ml.yaml too: it may not print or pass the bot's secrets
                self.problems.append(self._at(node, path, f"${{{name}}} is never read into ml.yaml (it is a forge "
                                              "token, a CI job credential or one of the bot's own settings); "
                                              "remove it"))
                return ""
            value = self.env.get(name)
            if value is None or (value == "" and default is not None):
                if default is not None:
                    return default
                self.problems.append(self._at(node, path, f"environment variable {name} is not set; set it, "
                                              f"or give a default as ${{{name}:-value}}"))
                return ""
            return value

        return _INTERPOLATION.sub(substitute, text)

    def _at(self, node: yaml.Node, path: YamlPath, message: str) -> Problem:
        return Problem(self.doc.file, node.start_mark.line + 1, node.start_mark.column + 1, dotted(path), message)
