"""`pass_env` may widen what a step or a command deploy sees, never to the bot's own secrets: a pull request
can edit ml.yaml, so naming GITHUB_TOKEN there is refused rather than quietly ignored."""

from __future__ import annotations

from typing import Any

from ..errors import Problem
from ..support.environment import is_forbidden
from .source import Document, YamlPath


def pass_env_problems(doc: Document) -> list[Problem]:
    pipeline = doc.data.get("pipeline")
    deploy = doc.data.get("deploy")
    targets = deploy if isinstance(deploy, list) else []
    steps = pipeline.items() if isinstance(pipeline, dict) else ()
    owners: list[tuple[YamlPath, Any]] = [(("pipeline", name), step) for name, step in steps]
    owners += [(("deploy", i), target) for i, target in enumerate(targets)]
    secrets = {t["secret_env"] for t in targets if isinstance(t, dict) and isinstance(t.get("secret_env"), str)}
    problems = []
    for where, owner in owners:
        names = owner.get("pass_env") if isinstance(owner, dict) else None
        for i, name in enumerate(names if isinstance(names, list) else ()):
            if isinstance(name, str) and is_forbidden(name, secrets):
                problems.append(doc.problem((*where, "pass_env", i), f"{name} is never passed to a step or a "
                                            "deploy command (it is a forge token, a CI job credential or one of "
                                            "the bot's own secrets); remove it from pass_env"))
    return problems
