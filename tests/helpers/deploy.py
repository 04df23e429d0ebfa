"""The deploy tests' model: its name, the webhook signing secret, Configs holding deploy targets, and versions in a
registry to deploy."""

from __future__ import annotations

from pathlib import Path

from mlops_bot.config.model import Compare, Config, DeployTarget, Model, Promote, Report, Tracking
from mlops_bot.registry import tags
from mlops_bot.registry.base import Registry

MODEL = "iris-classifier"
SECRET = "s3cr3t-signing-key-0123456789"
SUMMARY = "The challenger passes all 2 criteria against champion v2."


def make_config(root: Path, *targets: DeployTarget, model: str = MODEL) -> Config:
    """A Config with the given deploy targets and nothing to run or compare."""
    return Config(path=root / "ml.yaml", root=root, digest="0" * 64, version=1,
                  model=Model(model, "build/model"), tracking=Tracking("local", "iris"), params_file=None,
                  pipeline={}, compare=Compare(), promote=Promote(), deploy=tuple(targets), report=Report(),
                  rules=())


def seed_versions(registry: Registry, count: int = 3, model: str = MODEL) -> None:
    """Versions 1..count of `model`; the last one passed its criteria and is champion."""
    experiment = registry.get_or_create_experiment("iris")
    registry.get_or_create_registered_model(model)
    for number in range(1, count + 1):
        run = registry.create_run(experiment.experiment_id, f"train-{number}")
        lineage = {tags.VERDICT: "pass", tags.DECISION_SUMMARY: SUMMARY, tags.COMMIT: f"{number:040x}"}
        registry.create_model_version(model, f"runs:/{run.run_id}/model", run.run_id, lineage)
    registry.set_alias(model, "champion", str(count))
