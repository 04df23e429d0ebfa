"""ml.yaml validation: the JSON Schema first, then what a schema cannot say. Every problem is
collected and reported at once, located at its key or value. A document the schema passed before is not
validated again (`checked`); the checks that read the disk (`semantics`) run every time."""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

from ..errors import ConfigError, Problem
from .lookup import close_match
from .semantics import semantic_problems
from .source import Document, YamlPath

_TYPE_NAMES = {"string": "a string", "number": "a number", "integer": "an integer", "boolean": "true or false",
               "object": "a mapping", "array": "a list", "null": "null"}


@cache
def schema_bytes() -> bytes:
    try:  # the package's own file: importlib.resources would add 7 ms to every command's start-up
        return (Path(__file__).resolve().parent.parent / "schemas" / "ml.schema.json").read_bytes()
    except OSError:  # not a plain directory (a zip)
        from importlib import resources

        return resources.files("mlops_bot").joinpath("schemas/ml.schema.json").read_bytes()


@cache
def ml_schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(schema_bytes().decode("utf-8"))
    return schema


def check_document(doc: Document) -> None:
    from .checked import document_key, passed, remember

    key = document_key(doc, schema_bytes())
    known = key is not None and passed(doc.root, key)
    problems = ([] if known else schema_problems(doc)) + semantic_problems(doc)
    if problems:
        raise ConfigError(sorted(set(problems), key=lambda p: (p.line, p.col, p.message)))
    if key is not None and not known:
        remember(doc.root, key)  # only a document with no problem at all


@cache
def ecma_regex(pattern: str) -> re.Pattern[str]:
    """A schema `pattern` (ECMA-262) as Python must read it: `$` (outside a class, unescaped) is the very end of
    the string, as in JavaScript, not also the place before a final newline; \\d and \\w are ASCII."""
    out, escaped, in_class = [], False, False
    for char in pattern:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "[":
            in_class = True
        elif char == "]":
            in_class = False
        elif char == "$" and not in_class:
            char = r"\Z"
        out.append(char)
    return re.compile("".join(out), re.ASCII)


@cache
def _validator_class() -> Any:
    """Draft 2020-12 with `pattern` matched as JSON Schema means it (`ecma_regex`): Python's `re.search` lets
    `^name$` accept "name\\n"."""
    from jsonschema import Draft202012Validator, ValidationError, validators

    def pattern(validator: Any, regex: str, instance: Any, schema: Any) -> Any:
        if validator.is_type(instance, "string") and not ecma_regex(regex).search(instance):
            yield ValidationError(f"{instance!r} does not match {regex!r}")

    extend: Any = validators.extend  # untyped
    return extend(Draft202012Validator, {"pattern": pattern})


def schema_problems(doc: Document) -> list[Problem]:
    validator = _validator_class()(ml_schema())
    problems: list[Problem] = []
    for error in validator.iter_errors(doc.data):
        problems.extend(_explain(doc, error))
    return problems


def _explain(doc: Document, error: Any) -> list[Problem]:
    path: YamlPath = tuple(error.absolute_path)
    kind, value, schema = error.validator, error.instance, error.schema
    if kind == "additionalProperties" and isinstance(value, dict):
        allowed = list(schema.get("properties", {}))
        return [doc.problem((*path, key), f"unknown key '{key}'{close_match(key, allowed)}", key=True)
                for key in value if key not in allowed]
    if kind == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        return [doc.problem(path, f"missing required key '{missing}'")]
    if kind == "enum":
        choices = ", ".join(repr(c) for c in error.validator_value)
        hint = close_match(str(value), [str(c) for c in error.validator_value])
        return [doc.problem(path, f"{value!r} is not one of {choices}{hint}")]
    if kind == "type":
        wanted = error.validator_value if isinstance(error.validator_value, list) else [error.validator_value]
        names = " or ".join(_TYPE_NAMES.get(str(w), str(w)) for w in wanted)
        return [doc.problem(path, f"expected {names}, got {_describe(value)}")]
    if kind == "not" and "pattern" in json.dumps(error.validator_value):
        rule = "no leading '/' or '~', no '..'"
        return [doc.problem(path, f"{value!r} must be a relative path inside the project ({rule})")]
    if kind == "pattern" and path and path[-1] == "name" and len(path) == 2 and path[0] == "model":
        return [doc.problem(path, f"{value!r} is not a valid model name: use letters, digits, '.', '_' and '-'")]
    if kind == "const" and path == ("version",):
        return [doc.problem(path, f"unsupported version {value!r}; this mlops-bot reads version 1")]
    if kind == "propertyNames":
        return [doc.problem(path, error.message)]
    return [doc.problem(path, _plain(error.message))]


def _describe(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, (dict, list)):
        return "a mapping" if isinstance(value, dict) else "a list"
    return f"{type(value).__name__} {value!r}"


def _plain(message: str) -> str:
    # jsonschema prints whole sub-schemas in some messages; keep the first line and cut the rest.
    first = message.splitlines()[0]
    return first if len(first) <= 200 else first[:197] + "..."
