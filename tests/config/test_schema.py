from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


def undocumented(node: Any, where: str = "#") -> list[str]:
    """Every property (and every $defs entry) needs a description, so editors can show help."""
    missing: list[str] = []
    if isinstance(node, dict):
        for group in ("properties", "$defs"):
            for name, sub in node.get(group, {}).items():
                if isinstance(sub, dict) and "description" not in sub:
                    missing.append(f"{where}/{group}/{name}")
        for key, value in node.items():
            if key != "if":  # conditions only select; what they select is described where it is defined
                missing += undocumented(value, f"{where}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            missing += undocumented(value, f"{where}/{i}")
    return missing


def test_every_schema_is_valid_2020_12_and_fully_described() -> None:
    files = sorted(SCHEMAS.glob("*.schema.json"))
    assert files
    for path in files:
        schema = json.loads(path.read_text())
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        Draft202012Validator.check_schema(schema)
        assert undocumented(schema) == [], path.name


def test_schema_covers_every_section_the_issue_names() -> None:
    schema = json.loads((SCHEMAS / "ml.schema.json").read_text())
    assert set(schema["properties"]) == {"version", "model", "tracking", "params", "pipeline", "compare", "promote",
                                         "deploy", "report", "monitor", "on", "chatops"}
    step = schema["$defs"]["step"]["properties"]
    assert set(step) == {"cmd", "deps", "outs", "params", "env", "pass_env", "metrics", "predictions", "timeout",
                         "backend"}
    criterion = schema["$defs"]["criterion"]["properties"]
    rules = {"greater_is_better", "threshold", "min_absolute_change", "min_relative_change", "max_regression"}
    assert rules <= set(criterion)
    targets = ["command", "webhook", "gitops", "mlflow_serve", "azureml_endpoint"]
    assert schema["$defs"]["deployTarget"]["properties"]["type"]["enum"] == targets
