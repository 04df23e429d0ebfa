"""A project with promotion stages (staging, then production with an approval by comment), each stage deploying to
its own target that records the version in deployed.txt, on any registry kind (a Project over a given registry)."""

from __future__ import annotations

from pathlib import Path

from mlops_bot.config import load_config
from mlops_bot.config.model import Config
from mlops_bot.flows.project import Project
from mlops_bot.registry.base import ModelVersion, Registry
from tests.helpers.projects import ML_YAML

STAGE_DEPLOYS = """\
  - name: staging-record
    type: command
    cmd: "echo staging-$MODEL_VERSION >> deployed.txt"
  - name: production-record
    type: command
    cmd: "echo production-$MODEL_VERSION >> deployed.txt"
"""
STAGES = """\
promote:
  stages:
    - {alias: staging, deploy: [staging-record]}
    - alias: production
      requires: staging
      criteria: [{metric: accuracy, threshold: 0.85}]
      deploy: [production-record]
      approval: {permission: maintain, via: [comment]}
"""


def write_staged(root: Path, model: str, uri: str = "local") -> Config:
    root.mkdir(parents=True, exist_ok=True)
    (root / "ml.yaml").write_text(ML_YAML.format(model=model, uri=uri, deploy=STAGE_DEPLOYS) + STAGES)
    return load_config(root / "ml.yaml", env={})


def project_over(config: Config, registry: Registry) -> Project:
    """A Project whose registry is `registry` (any kind), outside CI."""
    return Project.of(config, env={}, opener=lambda: registry)


def deployed(root: Path) -> list[str]:
    path = root / "deployed.txt"
    return path.read_text().split() if path.exists() else []


def snapshot(registry: Registry, model: str) -> dict[str, tuple[tuple[str, ...], dict[str, str]]]:
    """Every version's aliases and tags: what a refused promotion must leave as it was."""
    return {v.version: (v.aliases, dict(v.tags)) for v in registry.search_model_versions(model)}


def holder(registry: Registry, model: str, alias: str) -> str | None:
    from mlops_bot.registry import alias_holder

    found: ModelVersion | None = alias_holder(registry, model, alias)
    return found.version if found else None
