"""Checks of `deploy[].rollout` a schema cannot express: which target types can split traffic, steps that only
grow and end at 100, a metrics source for the queries that need one, and placeholders spelled right."""

from __future__ import annotations

import re
from typing import Any

from ..errors import Problem
from .lookup import close_match
from .source import Document

# the target types whose traffic the bot drives (deploy/rollout/traffic.py)
SPLITS = ("mlflow_serve", "gitops", "azureml_endpoint")
PLACEHOLDERS = ("version", "previous", "target", "model")
_PLACEHOLDER = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")


def rollout_problems(doc: Document) -> list[Problem]:
    targets = doc.data.get("deploy")
    problems: list[Problem] = []
    for i, target in enumerate(targets if isinstance(targets, list) else []):
        rollout = target.get("rollout") if isinstance(target, dict) else None
        if isinstance(rollout, dict):
            problems += _target(doc, i, target, rollout)
    return problems


def _target(doc: Document, i: int, target: dict[str, Any], rollout: dict[str, Any]) -> list[Problem]:
    where, kind = ("deploy", i, "rollout"), target.get("type")
    if kind not in SPLITS:
        return [doc.problem(where, f"a {kind} target cannot split traffic, so it cannot roll out in steps; "
                            f"rollout works with {', '.join(SPLITS)} targets", key=True)]
    problems = _steps(doc, where, rollout.get("steps"))
    if kind == "gitops" and target.get("pull_request") is True:
        problems.append(doc.problem(("deploy", i, "pull_request"), "a rollout's steps are commits that must take "
                                    "effect when the bot makes them; a pull request would wait for a review. Push to "
                                    "the branch (remove pull_request) or drop rollout", key=True))
    if kind == "gitops" and "canary" in target:
        problems.append(doc.problem(("deploy", i, "canary"), "rollout sets canaryTrafficPercent step by step; "
                                    "remove canary: (the first step's traffic replaces it)", key=True))
    shadow = rollout.get("shadow")
    if isinstance(shadow, dict) and kind != "mlflow_serve":
        problems.append(doc.problem((*where, "shadow"), "shadow traffic needs a proxy that mirrors requests and "
                                    "compares the answers; only mlflow_serve targets have one (KServe has no "
                                    "mirroring; Azure ML's mirror traffic discards the answers)", key=True))
    analysis = rollout.get("analysis")
    analysis = analysis if isinstance(analysis, list) else []
    if (analysis or isinstance(shadow, dict)) and not rollout.get("metrics"):
        problems.append(doc.problem(where, "analysis queries and the shadow's agreement are answered by Prometheus; "
                                    "add metrics: with its URL (e.g. http://127.0.0.1:9090)", key=True))
    return problems + _analysis(doc, where, analysis)


def _steps(doc: Document, where: tuple[Any, ...], steps: Any) -> list[Problem]:
    if not isinstance(steps, list) or not steps:
        return []
    traffic = [s.get("traffic") if isinstance(s, dict) else None for s in steps]
    for j in range(1, len(traffic)):
        a, b = traffic[j - 1], traffic[j]
        if isinstance(a, int) and isinstance(b, int) and b <= a:
            return [doc.problem((*where, "steps", j, "traffic"), f"traffic {b} after {a}: each step sends more "
                                "traffic to the new version than the one before")]
    if isinstance(traffic[-1], int) and traffic[-1] != 100:
        return [doc.problem((*where, "steps", len(steps) - 1, "traffic"), f"the last step sends {traffic[-1]}% to "
                            "the new version; end with {traffic: 100} so the rollout completes")]
    return []


def _analysis(doc: Document, where: tuple[Any, ...], analysis: list[Any]) -> list[Problem]:
    problems, seen = [], set()
    for j, item in enumerate(analysis):
        if not isinstance(item, dict):
            continue
        name = item.get("name")
        if name in seen:
            problems.append(doc.problem((*where, "analysis", j, "name"), f"two analysis queries are named '{name}'; "
                                        "give each its own name"))
        seen.add(name)
        query = item.get("query")
        for word in _PLACEHOLDER.findall(query if isinstance(query, str) else ""):
            if word not in PLACEHOLDERS:
                choices = ", ".join(f"${p}" for p in PLACEHOLDERS)
                problems.append(doc.problem((*where, "analysis", j, "query"), f"${word} is not a placeholder the "
                                            f"bot fills in ({choices}){close_match(word, PLACEHOLDERS)}"))
        low, high = item.get("min"), item.get("max")
        if isinstance(low, (int, float)) and isinstance(high, (int, float)) and low > high:
            problems.append(doc.problem((*where, "analysis", j), f"min {low} is above max {high}: no value passes"))
    return problems
