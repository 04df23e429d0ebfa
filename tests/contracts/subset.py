"""Rebuilds github-rest-subset.json from GitHub's OpenAPI description, so the subset can be refreshed or grown.

    cd /tmp && npm pack @octokit/openapi@23.0.2 && tar xzf octokit-openapi-23.0.2.tgz
    python tests/contracts/subset.py /tmp/package [operationId ...]

Every operation already in the file is taken again from the description, plus the ones named. Each is stored as
{method, path, parameters: [{in, name, required}], requestBody: schema | null, responses: {status: schema | null}}
with the application/json schemas of the dereferenced description (generated/api.github.com.deref.json):
`example(s)` dropped and OpenAPI 3.0's `nullable: true` rewritten as a JSON Schema type list ([t, "null"]), so
jsonschema's Draft 2020-12 validator reads them (tests/servers/contract.py).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SUBSET = HERE / "github-rest-subset.json"
_DROPPED = {"example", "examples", "nullable"}


def convert(node: Any) -> Any:
    """A schema with OpenAPI 3.0's nullable rewritten as JSON Schema and examples dropped."""
    if isinstance(node, list):
        return [convert(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: convert(v) for k, v in node.items() if k not in _DROPPED}
    if node.get("nullable") is True:
        kind = out.get("type")
        if isinstance(kind, str):
            out["type"] = [kind, "null"]
        elif isinstance(kind, list) and "null" not in kind:
            out["type"] = [*kind, "null"]
        elif kind is None:
            out = {"anyOf": [out, {"type": "null"}]}
    return out


def _json_schema(part: dict[str, Any] | None) -> Any:
    content = (part or {}).get("content") or {}
    media = content.get("application/json") or next(iter(content.values()), None)
    return convert(media["schema"]) if media and "schema" in media else None


def operation(spec: dict[str, Any], op_id: str) -> dict[str, Any]:
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if isinstance(op, dict) and op.get("operationId") == op_id:
                return {"method": method.upper(),
                        "parameters": [{"in": p["in"], "name": p["name"], "required": bool(p.get("required", False))}
                                       for p in op.get("parameters", [])],
                        "path": path,
                        "requestBody": _json_schema(op.get("requestBody")),
                        "responses": {code: _json_schema(answer) for code, answer in op["responses"].items()}}
    raise SystemExit(f"{op_id}: no such operationId in the description")


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    package = Path(argv[0])
    spec = json.loads((package / "generated" / "api.github.com.deref.json").read_text(encoding="utf-8"))
    version = json.loads((package / "package.json").read_text(encoding="utf-8"))["version"]
    current = json.loads(SUBSET.read_text(encoding="utf-8"))
    wanted = sorted(set(current["operations"]) | set(argv[1:]))
    document = {
        "operations": {op_id: operation(spec, op_id) for op_id in wanted},
        "source": f"@octokit/openapi {version} generated/api.github.com.deref.json (MIT), operations used by the "
                  "bot; OpenAPI 3.0 nullable rewritten as JSON Schema type lists (tests/contracts/subset.py)",
    }
    SUBSET.write_text(json.dumps(document, indent=1, sort_keys=True), encoding="utf-8")
    print(f"{SUBSET.name}: {len(wanted)} operations from @octokit/openapi {version}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
