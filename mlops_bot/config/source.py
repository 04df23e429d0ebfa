"""Safe reading of ml.yaml: size limit, one mapping document, no duplicate keys, bounded alias
expansion, `${VAR}` interpolation, and the line and column of every key and value for error messages."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError, Problem

MAX_BYTES = 1024 * 1024  # a config is hand-written; anything larger is a mistake or an attack
MAX_NODES = 50_000  # counted through aliases, so a "billion laughs" document stops early
YamlPath = tuple[str | int, ...]

_INTERPOLATION = re.compile(r"\$(?:\$|\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\})")
_SAFE_SCALARS = {"null", "bool", "int", "float", "str"}
_COLLECTION_TAGS = {"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"}


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


def dotted(path: YamlPath) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def read_document(path: Path, env: Mapping[str, str] | None = None) -> Document:
    import os

    shown = str(path)
    if not path.is_file():
        what = "is a directory" if path.is_dir() else "does not exist"
        raise ConfigError([Problem(shown, 1, 1, "", f"the file {what}; create it or pass -c FILE")])
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise ConfigError([Problem(shown, 1, 1, "", f"the file is {size} bytes, over the limit of {MAX_BYTES}")])
    raw = path.read_bytes()
    text = _decode(raw, shown)
    node = _compose(text, shown)
    doc = Document(shown, {}, raw, path.resolve().parent)
    converter = _Converter(doc, os.environ if env is None else env)
    data = converter.convert(node, ())
    if converter.problems:
        raise ConfigError(converter.problems)
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
        nodes = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        message = f"invalid YAML: {exc.problem or exc.context}"
        bad_line = text.splitlines()[line - 1] if 0 < line <= len(text.splitlines()) else ""
        if "\t" in bad_line:
            message += "; tabs are not allowed in YAML indentation, use spaces"
        raise ConfigError([Problem(shown, line, col, "", message)]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([Problem(shown, 1, 1, "", f"invalid YAML: {exc}")]) from None
    if len(nodes) != 1 or nodes[0] is None:
        count = len([n for n in nodes if n is not None])
        raise ConfigError([Problem(shown, 1, 1, "", f"expected one YAML document, found {count}")])
    return nodes[0]


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
        if self.budget < 0:
            if self.budget == -1:
                self.problems.append(self._at(node, path, f"the document expands to more than {MAX_NODES} "
                                              "values (aliases?); write it out plainly"))
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
        self.scalars.flatten_mapping(node)  # applies `<<:` merge keys
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                self.problems.append(self._at(key_node, path, "keys must be plain strings"))
                continue
            key = str(key_node.value)  # keys stay strings: `on:` is not the boolean true here
            key_path: YamlPath = (*path, key)
            if key in out:
                first = self.doc.keys[key_path][0]
                self.problems.append(self._at(key_node, key_path, f"duplicate key '{key}' (first at line {first})"))
                continue
            self.doc.keys[key_path] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            out[key] = self.convert(value_node, key_path)
        return out

    def _scalar(self, node: yaml.ScalarNode, path: YamlPath) -> Any:
        kind = node.tag.rsplit(":", 1)[-1]
        if kind == "bool" and node.value.lower() not in ("true", "false"):
            kind = "str"  # YAML 1.2: yes/no/on/off are strings
        if kind == "timestamp":
            kind = "str"
        if kind not in _SAFE_SCALARS:
            self.problems.append(self._at(node, path, f"unsupported YAML tag {node.tag}"))
            return None
        if kind != "str":
            value = self.scalars.yaml_constructors[f"tag:yaml.org,2002:{kind}"](self.scalars, node)
            if isinstance(value, float) and not math.isfinite(value):
                self.problems.append(self._at(node, path, f"{node.value} is not a finite number"))
            return value
        return self._interpolate(str(node.value), node, path)

    def _interpolate(self, text: str, node: yaml.Node, path: YamlPath) -> str:
        def substitute(match: re.Match[str]) -> str:
            if match.group(0) == "$$":
                return "$"
            name, default = match.group(1), match.group(2)
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
