"""Dotted-path assignments in a YAML manifest that leave every other byte of the file as it was.

ruamel.yaml's round-trip loader parses the file and says where each key and value starts; the edit itself
is made in the original text (the scalar replaced in place, in its quoting style; a missing key inserted as
a new line under its parent), so odd indentation, spacing and comments survive. The result is parsed
again and must equal the old document with the assignments applied; when it does not (a value in a
block scalar, an alias, a flow mapping to extend), the whole document is re-dumped by ruamel instead,
which keeps comments but normalises indentation.

Paths: `spec.predictor.model.storageUri`, list items as `containers[0].image`, keys holding dots as
`metadata.annotations["serving.kserve.io/deploymentMode"]`. Values are strings from ml.yaml: they keep
the type of the value they replace (`"2"` stays a number where a number was); a new key gets `true`,
`false` and numbers as such and anything else as a string.
"""

from __future__ import annotations

import copy
import io
import json
import re
from collections.abc import Mapping
from typing import Any

import yaml as pyyaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import YAMLError
from ruamel.yaml.scalarbool import ScalarBoolean
from ruamel.yaml.util import load_yaml_guess_indent

Token = str | int
PLACEHOLDERS = ("model_uri", "model_name", "model_version")
_TOKEN = re.compile(r'(?:^|\.)([^.\[\]"]+)|\[(\d+)\]|\["((?:[^"\\]|\\.)*)"\]')
_PLAIN = re.compile(r"[A-Za-z_/][A-Za-z0-9_./:@+=~-]*")
_INT = re.compile(r"[-+]?[0-9]+")
_FLOAT = re.compile(r"[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")


class ManifestError(ValueError):
    """The manifest or a path cannot be edited as asked; the message says which and why."""


def fill(template: str, values: Mapping[str, str]) -> str:
    """Replaces {model_uri}, {model_name}, {model_version}; other braces are left alone (no str.format)."""
    for name in PLACEHOLDERS:
        if name in values:
            template = template.replace("{" + name + "}", values[name])
    return template


def parse_path(path: str) -> list[Token]:
    tokens: list[Token] = []
    at = 0
    while at < len(path):
        match = _TOKEN.match(path, at)
        if match is None or (at > 0 and match.group(1) is not None and path[at] != "."):
            raise ManifestError(f"'{path}' is not a dotted path (e.g. spec.predictor.model.storageUri, "
                                'containers[0].image, annotations["a.b/c"])')
        key, index, quoted = match.groups()
        tokens.append(int(index) if index is not None else key if key is not None else json.loads(f'"{quoted}"'))
        at = match.end()
    if not tokens:
        raise ManifestError("an empty path cannot be assigned")
    return tokens


def load(text: str) -> CommentedMap:
    """The manifest's single document, which must be a mapping."""
    try:
        documents = [d for d in _yaml().load_all(text) if d is not None]
    except YAMLError as exc:
        raise ManifestError(f"is not valid YAML: {str(exc).splitlines()[0]}") from None
    if len(documents) != 1:
        raise ManifestError(f"holds {len(documents)} YAML documents; put the model's manifest in a file of its own")
    if not isinstance(documents[0], CommentedMap):
        raise ManifestError("is not a YAML mapping")
    return documents[0]


def edit(text: str, assignments: Mapping[str, str]) -> str:
    """The text with every assignment made; the same text when the manifest already holds them all."""
    for path, raw in assignments.items():
        text = _assign(text, path, parse_path(path), raw)
    return text


def _assign(text: str, path: str, tokens: list[Token], raw: str) -> str:
    doc = load(text)
    parent, missing = _walk(doc, path, tokens)
    old = None if missing else parent[tokens[-1]]
    value = coerce(raw, old)
    if not missing and _same(old, value):
        return text
    expected = _plain(doc)
    _set(expected, tokens, value)
    edited = _insert(text, parent, missing, value) if missing else _replace(text, parent, tokens[-1], value)
    if edited is not None and _parses_to(edited, expected):
        return edited
    _set(doc, tokens, value)
    return _dump(doc, text)


def _walk(doc: CommentedMap, path: str, tokens: list[Token]) -> tuple[Any, list[Token]]:
    """The deepest existing container on the path, and the tokens below it that do not exist yet."""
    node: Any = doc
    for i, token in enumerate(tokens):
        where = _show(tokens[:i]) or "the document"
        if isinstance(token, int):
            if not isinstance(node, list) or token >= len(node):
                raise ManifestError(f"{path}: {where} has no item [{token}]")
        elif not isinstance(node, dict):
            raise ManifestError(f"{path}: {where} is not a mapping, so it has no key '{token}'")
        elif token not in node:
            if any(isinstance(t, int) for t in tokens[i:]):
                raise ManifestError(f"{path}: {where} has no key '{token}' (list items are never created)")
            return node, list(tokens[i:])
        if i == len(tokens) - 1:
            if isinstance(node[token], (dict, list)):
                raise ManifestError(f"{path}: holds a mapping or list; name a single value under it")
            return node, []
        node = node[token]
    raise AssertionError("unreachable: the loop returns")


def _show(tokens: list[Token]) -> str:
    return "".join(f"[{t}]" if isinstance(t, int) else f".{t}" for t in tokens).lstrip(".")


def kind(value: Any) -> str:
    """bool, number, str or null: the YAML type, whatever ruamel's scalar class (its anchored booleans are ints)."""
    if isinstance(value, (bool, ScalarBoolean)):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return "null" if value is None else "str" if isinstance(value, str) else type(value).__name__


def coerce(raw: str, old: Any) -> Any:
    """The value to write: of the old value's type when `raw` reads as one, else resolved like YAML would."""
    was = kind(old)
    if was == "str":
        return raw
    if was in ("bool", "null") and raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    if was in ("number", "null") and _INT.fullmatch(raw):
        return int(raw)
    if was in ("number", "null") and _FLOAT.fullmatch(raw):
        return float(raw)
    return raw


def _same(old: Any, new: Any) -> bool:
    return kind(old) == kind(new) and bool(old == new)


def render(value: Any, quote: str | None) -> str:
    """One-line YAML for a scalar; `quote` is the original's quoting style (', " or None for plain)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    text = str(value)
    if quote == '"' or not text.isprintable():  # line breaks fold inside '...': only escapes keep them
        return _double_quoted(text)
    if quote is None and _plain_safe(text):
        return text
    return "'" + text.replace("'", "''") + "'"


def _double_quoted(text: str) -> str:
    out = []
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif char.isprintable():
            out.append(char)
        else:  # YAML's \x, \u and \U escapes take a whole code point (JSON's surrogate pairs do not read back)
            code = ord(char)
            out.append(f"\\x{code:02X}" if code < 0x100 else f"\\u{code:04X}" if code < 0x10000 else f"\\U{code:08X}")
    return '"' + "".join(out) + '"'


def _plain_safe(text: str) -> bool:
    """A plain scalar every YAML reader (1.1 and 1.2) reads back as this same string."""
    if not _PLAIN.fullmatch(text):
        return False
    try:
        return bool(pyyaml.safe_load(text) == text)
    except pyyaml.YAMLError:
        return False


def _lines(text: str) -> list[str]:
    return text.splitlines(keepends=True)


def _replace(text: str, container: Any, key: Token, value: Any) -> str | None:
    """The text with the scalar at container[key] rewritten in place, or None if it is not a one-line scalar."""
    line, col = container.lc.value(key) if isinstance(container, CommentedMap) else container.lc.item(key)
    lines = _lines(text)
    if line >= len(lines):
        return None
    body = lines[line].rstrip("\r\n")
    end = _scalar_end(body, col, container.fa.flow_style())
    if end is None:
        return None
    quote = body[col] if body[col] in "'\"" else None
    lines[line] = body[:col] + render(value, quote) + lines[line][end:]
    return "".join(lines)


def _scalar_end(line: str, col: int, flow: bool) -> int | None:
    if col >= len(line) or line[col] in "|>&*!":
        return None
    if line[col] == "'":
        match = re.compile(r"'(?:[^']|'')*'").match(line, col)
        return match.end() if match else None
    if line[col] == '"':
        match = re.compile(r'"(?:[^"\\]|\\.)*"').match(line, col)
        return match.end() if match else None
    stop = re.compile(r"\s#|[,\]}]" if flow else r"\s#").search(line, col)
    return len((line[:stop.start()] if stop else line).rstrip())


def _insert(text: str, parent: Any, missing: list[Token], value: Any) -> str | None:
    """The text with the missing keys added as new lines at the end of `parent`'s block."""
    if not isinstance(parent, CommentedMap) or not parent or parent.fa.flow_style():
        return None
    key_line, key_col = parent.lc.key(next(iter(parent)))
    lines = _lines(text)
    last = key_line
    for i in range(key_line + 1, len(lines)):
        stripped = lines[i].strip()
        if not stripped or stripped.startswith("#"):
            continue
        if len(lines[i]) - len(lines[i].lstrip(" ")) < key_col or stripped in ("---", "..."):
            break
        last = i
    newline = "\r\n" if lines[last].endswith("\r\n") else "\n"
    if not lines[last].endswith("\n"):
        lines[last] += newline
    step = load_yaml_guess_indent(text)[1] or 2
    added = [" " * (key_col + step * depth) + render(key, None) + ":" for depth, key in enumerate(missing)]
    added[-1] += " " + render(value, None)
    lines[last + 1:last + 1] = [line + newline for line in added]
    return "".join(lines)


def _set(node: Any, tokens: list[Token], value: Any) -> None:
    for token in tokens[:-1]:
        if isinstance(node, dict) and token not in node:
            node[token] = CommentedMap() if isinstance(node, CommentedMap) else {}
        node = node[token]
    node[tokens[-1]] = value


def _plain(node: Any) -> Any:
    """A deep copy in plain dicts, lists and scalars, to compare documents whatever their formatting."""
    if isinstance(node, dict):
        return {_plain(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    if kind(node) == "bool":
        return bool(node)
    if node is None:
        return node
    for cls in (str, int, float):
        if isinstance(node, cls):
            return cls(node)
    return copy.deepcopy(node)


def _parses_to(text: str, expected: Any) -> bool:
    try:
        return bool(_plain(load(text)) == expected)
    except ManifestError:
        return False


def _yaml(text: str | None = None) -> YAML:
    y = YAML()  # round-trip: comments, key order and quoting survive a dump
    y.preserve_quotes = True
    y.width = 4096  # never re-wrap long lines
    if text is not None:
        _, indent, offset = load_yaml_guess_indent(text)
        y.indent(mapping=indent or 2, sequence=(indent or 2) + (offset or 0), offset=offset or 0)
        y.explicit_start = any(line.strip() == "---" for line in _lines(text)[:50])
    return y


def _dump(doc: CommentedMap, text: str) -> str:
    out = io.StringIO()
    _yaml(text).dump(doc, out)
    return out.getvalue()
