"""The promotion tests' project with `on:` rules, for the event tests, and what its audit log holds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlops_bot.config.model import Config
from tests.helpers import projects

CHAMPION_DEPLOYS = "  - {event: model_version.alias_set, where: {alias: champion}, do: [deploy]}"


def write_project(root: Path, model: str = "demo", uri: str = "local", rules: str = CHAMPION_DEPLOYS) -> Config:
    """The promotion tests' project, with a deploy target that records versions and the given `on:` rules."""
    return projects.write_project(root, model, uri, rules=rules)


def audit_lines(root: Path) -> list[dict[str, Any]]:
    path = root / ".mlops-bot" / "events" / "audit.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
