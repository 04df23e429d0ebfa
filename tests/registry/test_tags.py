"""Every tag name lives in registry/tags.py, and its value never changes: registries in use hold these tags,
and gate, status, rollback and reuse find versions and runs by them."""

from __future__ import annotations

import ast
from pathlib import Path

import mlops_bot
from mlops_bot.registry import tags

PINNED = {
    "PREFIX": "mlops_bot.",
    "MLFLOW_GIT_COMMIT": "mlflow.source.git.commit", "MLFLOW_GIT_BRANCH": "mlflow.source.git.branch",
    "MLFLOW_GIT_REPO_URL": "mlflow.source.git.repoURL", "MLFLOW_RUN_NAME": "mlflow.runName",
    "COMMIT": "mlops_bot.git.commit", "BRANCH": "mlops_bot.git.branch", "GIT_DIRTY": "mlops_bot.git.dirty",
    "REPOSITORY": "mlops_bot.git.repository", "PULL_REQUEST": "mlops_bot.pull_request",
    "RUN_ID": "mlops_bot.run_id", "RUN_URL": "mlops_bot.run_url", "CONFIG_DIGEST": "mlops_bot.config_digest",
    "DATA_HASH": "mlops_bot.data_hash", "REUSED_FROM": "mlops_bot.reused_from",
    "PIPELINE_KEY": "mlops_bot.pipeline_key", "PARTIAL": "mlops_bot.partial",
    "MODEL_DIGEST": "mlops_bot.model_digest", "RESCORE_PREFIX": "mlops_bot.rescore.",
    "VERDICT": "mlops_bot.verdict", "DECISION_SUMMARY": "mlops_bot.decision",
    "DECISION_URL": "mlops_bot.decision_url", "COMPARED_WITH": "mlops_bot.compared_with",
    "PROMOTED_AT": "mlops_bot.promoted_at", "REPLACED_BY": "mlops_bot.replaced_by",
    "ROLLED_BACK": "mlops_bot.rolled_back", "DRIFT_RETRAINED": "mlops_bot.drift.retrained",
    "DEPLOY_PREFIX": "mlops_bot.deploy.",
    "ALIAS_PREFIX": "mlops-bot.alias.", "CREATE_TOKEN": "mlops_bot.create_token",
    "LOCK_OWNER": "mlops_bot.lock.owner", "LOCK_EXPIRES": "mlops_bot.lock.expires",
    "MLFLOW_PARENT_RUN_ID": "mlflow.parentRunId", "PARENT_RUN": "mlops_bot.parent_run", "ROLE": "mlops_bot.role",
    "ROLE_CHILD": "child", "MADE_BY_STEP": "mlops_bot.made_by_step",
    "LOGGED_MODEL_FROM": "mlops_bot.logged_model.made_from", "MLFLOW_USER": "mlflow.user",
    "MLFLOW_SOURCE_NAME": "mlflow.source.name", "MLFLOW_SOURCE_TYPE": "mlflow.source.type",
    "ROLE_MONITOR": "monitor", "MONITOR_MODEL": "mlops_bot.monitor.model",
    "MONITOR_VERSION": "mlops_bot.monitor.version", "MONITOR_CHAMPION_RUN": "mlops_bot.monitor.champion_run_id",
    "DRIFT_FINDING": "mlops_bot.drift.finding_id", "DRIFT_DETECTED": "mlops_bot.drift.detected",
    "STAGE_PREFIX": "mlops_bot.stage.", "APPROVAL_PREFIX": "mlops_bot.approval.", "MOVE_PREFIX": "mlops_bot.moved.",
    "COPIED_FROM": "mlops_bot.copied_from", "COPIED_RUN": "mlops_bot.copied_from_run",
}
PACKAGE = Path(mlops_bot.__file__).parent
# Modules whose tag names have not moved to registry/tags.py yet; empty this set as they do.
NOT_YET: set[Path] = set()


def test_every_constant_keeps_its_value() -> None:
    assert {k: v for k, v in vars(tags).items() if k.isupper() and isinstance(v, str)} == PINNED


def test_every_builder_keeps_its_shape() -> None:
    assert tags.step_key("train") == "mlops_bot.step.train.key"
    assert tags.step_status("train") == "mlops_bot.step.train.status"
    assert tags.deploy_tag("prod", "at") == "mlops_bot.deploy.prod.at"
    assert tags.deploy_status("prod") == "mlops_bot.deploy.prod.status"
    assert tags.deploy_detail("prod") == "mlops_bot.deploy.prod.detail"
    assert tags.deploy_tag("prod", "rollout") == "mlops_bot.deploy.prod.rollout"  # a rollout's state (JSON)
    assert tags.rescore_tag("ab12") == "mlops_bot.rescore.ab12"
    assert tags.stage_reached("staging") == "mlops_bot.stage.staging.reached"
    assert tags.approval_tag("production") == "mlops_bot.approval.production"
    assert tags.move_tag("production", 1765000000000) == "mlops_bot.moved.production.1765000000000"
    assert tags.alias_tag("champion") == "mlops-bot.alias.champion"
    assert tags.alias_of_tag("mlops-bot.alias.champion") == "champion" and tags.alias_of_tag("other") is None


def _tag_like(text: str, subpackages: set[str]) -> bool:
    """A string that starts a tag name: mlops_bot.<not a module>, mlops-bot.alias, mlflow.<x>."""
    if text.startswith("mlops_bot."):
        return text.split(".")[1] not in subpackages  # "mlops_bot.flows.x" is a module path
    return text.startswith(("mlops-bot.alias", "mlflow.source", "mlflow.runName"))


def test_no_other_module_builds_a_tag_name() -> None:
    subpackages = {p.name for p in PACKAGE.iterdir() if p.is_dir()} | {p.stem for p in PACKAGE.glob("*.py")}
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == PACKAGE / "registry" / "tags.py" or path.relative_to(PACKAGE) in NOT_YET:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            parts = node.values if isinstance(node, ast.JoinedStr) else [node]
            first = parts[0] if parts else None
            if isinstance(first, ast.Constant) and isinstance(first.value, str) and "\n" not in first.value \
                    and _tag_like(first.value, subpackages):
                found.append(f"{path.relative_to(PACKAGE)}:{node.lineno}: {first.value!r}")
    assert found == [], "spell tag names in mlops_bot/registry/tags.py"
