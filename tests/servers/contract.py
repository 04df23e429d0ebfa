"""GitHub's REST contract for the local server: routing, request and response checks (jsonschema), and
`skeleton()`, the smallest instance a response schema accepts, onto which the server lays its real state.

The operations come from tests/contracts/github-rest-subset.json (+ github-rest-users.json for GET /user),
taken from GitHub's OpenAPI description. Error statuses the description leaves out (401, 403 and 429 rate
limits, 5xx) are checked against its "Basic Error" schema, the body GitHub sends for them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker

CONTRACTS = Path(__file__).resolve().parent.parent / "contracts"
FILES = ("github-rest-subset.json", "github-rest-users.json")
_INTEGER_PARAMS = {"issue_number", "comment_id", "pull_number", "check_run_id", "deployment_id", "run_id"}


class Contract:
    def __init__(self) -> None:
        self.operations: dict[str, dict[str, Any]] = {}
        for name in FILES:
            self.operations.update(json.loads((CONTRACTS / name).read_text(encoding="utf-8"))["operations"])
        routes = []
        for op_id, op in self.operations.items():
            pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(op["path"]))
            routes.append((op["path"].count("{"), op["method"], re.compile(f"^{pattern}$"), op_id))
        self._routes = sorted(routes, key=lambda r: r[0])  # literal segments win over parameters
        errors = self.operations["issues/create-comment"]["responses"]
        self.basic_error, self.validation_error = errors["403"], errors["422"]
        self._validators: dict[str, Draft202012Validator] = {}

    def route(self, method: str, path: str) -> tuple[str, dict[str, str]] | None:
        for _, verb, pattern, op_id in self._routes:
            match = pattern.match(path)
            if verb == method and match:
                return op_id, match.groupdict()
        return None

    def response_schema(self, op_id: str, status: int) -> dict[str, Any]:
        schema = self.operations[op_id]["responses"][str(status)]
        assert isinstance(schema, dict), f"{op_id} {status} has no body"
        return schema

    def check_request(self, op_id: str, params: dict[str, str], query: dict[str, list[str]], body: Any) -> list[str]:
        op = self.operations[op_id]
        problems = [f"path parameter {k}={v!r} is not an integer" for k, v in params.items()
                    if k in _INTEGER_PARAMS and not v.isdigit()]
        declared = {p["name"]: p for p in op["parameters"] if p["in"] == "query"}
        problems += [f"query parameter {k!r} is not declared" for k in query if k not in declared]
        problems += [f"required query parameter {k!r} is missing" for k, p in declared.items()
                     if p.get("required") and k not in query]
        problems += [f"query parameter {k!r} given {len(v)} times" for k, v in query.items() if len(v) > 1]
        problems += _paging(query)
        schema = op["requestBody"]
        if schema is None:
            if body is not None:
                problems.append("a body was sent to an operation that takes none")
        elif body is None:
            problems.append("the body is missing")
        else:
            problems += self._validate(f"{op_id} request", schema, body)
        return problems

    def check_response(self, op_id: str, status: int, body: Any) -> list[str]:
        responses = self.operations[op_id]["responses"]
        if str(status) in responses:
            schema = responses[str(status)]
            if schema is None:
                return [] if body is None else ["a body was sent where the contract has none"]
            return self._validate(f"{op_id} {status}", schema, body)
        if status >= 400:
            schema = self.validation_error if status == 422 else self.basic_error
            return self._validate(f"error {status}", schema, body)
        return [f"status {status} is not documented for {op_id}"]

    def _validate(self, key: str, schema: dict[str, Any], instance: Any) -> list[str]:
        validator = self._validators.get(key)
        if validator is None:
            validator = self._validators[key] = Draft202012Validator(schema, format_checker=FormatChecker())
        return [f"{'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message[:200]}"
                for e in list(validator.iter_errors(instance))[:5]]


def _paging(query: dict[str, list[str]]) -> list[str]:
    problems = []
    for name, low, high in (("per_page", 1, 100), ("page", 1, 10**6)):
        value = (query.get(name) or [""])[0]
        if name in query and not (value.isdigit() and low <= int(value) <= high):
            problems.append(f"{name}={value!r} is not an integer in {low}..{high}")
    return problems


def skeleton(schema: dict[str, Any], nullable: bool = True) -> Any:
    """The smallest instance of `schema`: required properties only, nulls where allowed, empty lists."""
    for key in ("oneOf", "anyOf"):
        if key in schema:
            return skeleton(schema[key][0], nullable)
    if "allOf" in schema:
        merged: dict[str, Any] = {}
        for part in schema["allOf"]:
            merged = overlay(merged, skeleton(part, nullable))
        return merged
    types = schema.get("type")
    types = types if isinstance(types, list) else [types]
    if nullable and "null" in types:
        return None
    if "enum" in schema:
        return next(v for v in schema["enum"] if v is not None)
    if "object" in types or "properties" in schema:
        properties = schema.get("properties", {})
        return {name: skeleton(properties.get(name, {})) for name in schema.get("required", [])}
    if "array" in types:
        return []
    if "string" in types:
        return {"date-time": "2024-01-01T00:00:00Z", "uri": "https://example.invalid/",
                "email": "bot@example.invalid"}.get(str(schema.get("format")), "")
    if "integer" in types or "number" in types:
        return 0
    if "boolean" in types:
        return False
    return None


def build(schema: dict[str, Any], state: dict[str, Any], nullable: bool = True) -> dict[str, Any]:
    """A response object: the schema's skeleton with the server's real state laid over it."""
    out = overlay(skeleton(schema, nullable), state)
    assert isinstance(out, dict)
    return out


def overlay(base: Any, extra: Any) -> Any:
    """`extra` laid over `base`, recursively for objects."""
    if isinstance(base, dict) and isinstance(extra, dict):
        out = dict(base)
        for key, value in extra.items():
            out[key] = overlay(base.get(key), value)
        return out
    return extra


CONTRACT = Contract()
