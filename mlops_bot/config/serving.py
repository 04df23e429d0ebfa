"""Checks of the deploy targets that verify a version before traffic (`mlflow_serve`, `azureml_endpoint`) a schema
cannot express: verify.rows exists or a step writes it, the version's recorded predictions are known (a step declares
predictions, or verify.predictions names them); and no two mlflow_serve targets share a front port."""

from __future__ import annotations

from typing import Any

from ..errors import Problem
from .lookup import Writers, exists, path_problem
from .source import Document

VERIFIED = ("mlflow_serve", "azureml_endpoint")  # the types that send verify.rows to the new version


def serving_problems(doc: Document, steps: dict[str, dict[str, Any]], writers: Writers) -> list[Problem]:
    targets = doc.data.get("deploy")
    problems: list[Problem] = []
    ports: dict[int, str] = {}
    predictions = any(isinstance(step.get("predictions"), str) for step in steps.values())
    for i, target in enumerate(targets if isinstance(targets, list) else []):
        if not isinstance(target, dict) or target.get("type") not in VERIFIED:
            continue
        if target.get("type") == "mlflow_serve":
            problems += _port(doc, i, target, ports)
        verify = target.get("verify")
        problems += _verify(doc, i, verify if isinstance(verify, dict) else {}, writers, predictions)
    return problems


def _port(doc: Document, i: int, target: dict[str, Any], ports: dict[int, str]) -> list[Problem]:
    port = target.get("port")
    if isinstance(port, int) and port in ports:
        return [doc.problem(("deploy", i, "port"), f"port {port} is the front of target '{ports[port]}' already; "
                            "give each mlflow_serve target its own port")]
    if isinstance(port, int):
        ports[port] = str(target.get("name"))
    return []


def _verify(doc: Document, i: int, verify: dict[str, Any], writers: Writers, predictions: bool) -> list[Problem]:
    rows = verify.get("rows")
    if not isinstance(rows, str):
        return []
    problems = []
    if not (path_problem(rows) or writers.written(rows) or exists(doc.root / rows) is not False):
        problems.append(doc.problem(("deploy", i, "verify", "rows"), f"'{rows}' does not exist and no step writes "
                                    "it; name the evaluation inputs (e.g. the test split a step writes)"))
    if not predictions and not isinstance(verify.get("predictions"), str):
        problems.append(doc.problem(("deploy", i, "verify"), "verification compares the server's answers with the "
                                    "predictions the evaluation step recorded, but no step declares predictions: "
                                    "add predictions: to the evaluation step"))
    return problems
