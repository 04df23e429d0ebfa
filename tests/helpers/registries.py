"""Registries for tests: the kinds every contract test runs on, small retry budgets, and runs and versions made
directly in a registry (as `mlops-bot run` and `promote` leave them), so tests need no training."""

from __future__ import annotations

from pathlib import Path

from mlops_bot.config.model import Config
from mlops_bot.registry.base import Registry

REGISTRY_KINDS = ("local", "mlflow", "mlflow-tag-aliases")
# Small budgets keep failing tests fast; the real server answers well within them.
TEST_RETRY = {"total_seconds": 10.0, "initial_wait": 0.01, "max_wait": 0.2, "retry_after_cap": 0.5,
              "timeout": 10.0}


def make_run(registry: Registry, config: Config, accuracy: float, workdir: Path) -> str:
    """A finished run with metrics and a model artifact, as `mlops-bot run` leaves one."""
    experiment = registry.get_or_create_experiment(config.tracking.experiment)
    run = registry.create_run(experiment.experiment_id, f"acc-{accuracy}", {"mlflow.source.git.commit": "c0ffee"})
    registry.log_batch(run.run_id, params={"C": str(accuracy)}, metrics={"accuracy": accuracy})
    model_dir = workdir / f"model-{run.run_id}"
    model_dir.mkdir(parents=True)
    (model_dir / "model.txt").write_text(f"accuracy {accuracy}\n")
    registry.upload_artifacts(run.run_id, model_dir, "model")
    registry.update_run(run.run_id, "FINISHED")
    return run.run_id


def add_version(registry: Registry, config: Config, workdir: Path, accuracy: float = 0.9) -> str:
    """A finished run with a model artifact, registered as a new version of config's model."""
    run_id = make_run(registry, config, accuracy, workdir)
    registry.get_or_create_registered_model(config.model.name)
    artifact_uri = registry.get_run(run_id).artifact_uri
    return registry.create_model_version(config.model.name, f"{artifact_uri}/model", run_id).version
