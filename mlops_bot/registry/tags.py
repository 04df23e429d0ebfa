"""Every tag name mlops-bot writes or reads on runs, model versions and registered models, and every
function that builds one: the one place they are spelled.

The values are stored in existing registries: never change one (tests/registry/test_tags.py pins them).
"""

from __future__ import annotations

PREFIX = "mlops_bot."

# MLflow's own lineage tags, written where they exist so that MLflow's UI shows them
MLFLOW_GIT_COMMIT = "mlflow.source.git.commit"
MLFLOW_GIT_BRANCH = "mlflow.source.git.branch"
MLFLOW_GIT_REPO_URL = "mlflow.source.git.repoURL"
MLFLOW_RUN_NAME = "mlflow.runName"
MLFLOW_USER = "mlflow.user"
MLFLOW_SOURCE_NAME = "mlflow.source.name"
MLFLOW_SOURCE_TYPE = "mlflow.source.type"
MLFLOW_PARENT_RUN_ID = "mlflow.parentRunId"  # nests a run under another in MLflow's UI

# lineage, written when a run is recorded or a version is registered
COMMIT = PREFIX + "git.commit"
BRANCH = PREFIX + "git.branch"
GIT_DIRTY = PREFIX + "git.dirty"  # "true" | "false"
REPOSITORY = PREFIX + "git.repository"
PULL_REQUEST = PREFIX + "pull_request"
RUN_ID = PREFIX + "run_id"
RUN_URL = PREFIX + "run_url"
CONFIG_DIGEST = PREFIX + "config_digest"
DATA_HASH = PREFIX + "data_hash"
REUSED_FROM = PREFIX + "reused_from"  # read (shown as lineage) but no longer written

# the pipeline run: what makes it findable for reuse
PIPELINE_KEY = PREFIX + "pipeline_key"
PARTIAL = PREFIX + "partial"  # "true" on a run of --step: never reused
MODEL_DIGEST = PREFIX + "model_digest"  # content hash of model.artifact, as pipeline/hashing computes it

# on a champion's run: its rescoring on one set of evaluation inputs, recorded once (lifecycle/rescore_record.py)
RESCORE_PREFIX = PREFIX + "rescore."


def rescore_tag(key: str) -> str:
    """`mlops_bot.rescore.<key>`: when the champion was rescored on the evaluation inputs with this key."""
    return RESCORE_PREFIX + key

# a run a step's own mlflow code created inside the pipeline run (pipeline/selflog.py): never a challenger,
# never reused (it carries no pipeline key)
PARENT_RUN = PREFIX + "parent_run"  # the pipeline run's id
ROLE = PREFIX + "role"
ROLE_CHILD = "child"  # the value of ROLE on such a run
MADE_BY_STEP = PREFIX + "made_by_step"  # the step whose code created it

# a monitoring run: one drift check of the data the champion sees (`mlops-bot drift`), in the champion's experiment
ROLE_MONITOR = "monitor"  # the value of ROLE on such a run
MONITOR_MODEL = PREFIX + "monitor.model"  # the registered model whose champion was checked
MONITOR_VERSION = PREFIX + "monitor.version"  # the champion version ("" when there is none: monitor.reference)
MONITOR_CHAMPION_RUN = PREFIX + "monitor.champion_run_id"  # the champion's training run
DRIFT_FINDING = PREFIX + "drift.finding_id"  # stable digest of (model, version, what drifted)
DRIFT_DETECTED = PREFIX + "drift.detected"  # "true" | "false"

# on an MLflow 3 Logged Model the bot recorded (registry/mlflow/logged_models.py): "<run_id>/<artifact path>"
LOGGED_MODEL_FROM = PREFIX + "logged_model.made_from"


def step_key(step: str) -> str:
    """The cache key of a step's inputs, on the pipeline's run."""
    return f"{PREFIX}step.{step}.key"


def step_status(step: str) -> str:
    """How a step ended in the pipeline's run (ran, cached, ...)."""
    return f"{PREFIX}step.{step}.status"


# the decision that judged the version
VERDICT = PREFIX + "verdict"  # pass | fail
DECISION_SUMMARY = PREFIX + "decision"
DECISION_URL = PREFIX + "decision_url"
COMPARED_WITH = PREFIX + "compared_with"  # champion version it was judged against, or "bootstrap"

# life as champion
PROMOTED_AT = PREFIX + "promoted_at"
REPLACED_BY = PREFIX + "replaced_by"
ROLLED_BACK = PREFIX + "rolled_back"  # why it was taken out of service
# the drift finding (its stable id) whose retraining an `on:` rule started for this champion (flows/actions.py)
DRIFT_RETRAINED = PREFIX + "drift.retrained"

# governance (lifecycle/stages.py, lifecycle/approvals.py, lifecycle/history.py)
STAGE_PREFIX = PREFIX + "stage."
APPROVAL_PREFIX = PREFIX + "approval."
MOVE_PREFIX = PREFIX + "moved."


def stage_reached(alias: str) -> str:
    """`mlops_bot.stage.<alias>.reached`: when the version reached that stage through the bot's promotion path."""
    return f"{STAGE_PREFIX}{alias}.reached"


def approval_tag(alias: str) -> str:
    """`mlops_bot.approval.<alias>`: the approval (JSON: by, at, via, where, role) for the version to reach it."""
    return APPROVAL_PREFIX + alias


def move_tag(alias: str, stamp_ms: int) -> str:
    """`mlops_bot.moved.<alias>.<ms>`: one move of the alias to this version by the bot (JSON), for history."""
    return f"{MOVE_PREFIX}{alias}.{stamp_ms}"


# a version copied from another registry (`promote --to-registry`): where it came from
COPIED_FROM = PREFIX + "copied_from"  # "<redacted source tracking URI>#<model>/<version>"
COPIED_RUN = PREFIX + "copied_from_run"  # on the copied run: "<redacted source tracking URI>#<source run id>"


# deployments, per target (see deploy/base.py for the fields)
DEPLOY_PREFIX = PREFIX + "deploy."


def deploy_tag(target: str, field: str) -> str:
    """`mlops_bot.deploy.<target>.<field>`: status, at, key, detail, url, commit."""
    return f"{DEPLOY_PREFIX}{target}.{field}"


def deploy_status(target: str) -> str:
    return deploy_tag(target, "status")


def deploy_detail(target: str) -> str:
    return deploy_tag(target, "detail")


# aliases emulated with version tags, for registries without the alias API (note the hyphen: historical)
ALIAS_PREFIX = "mlops-bot.alias."


def alias_tag(alias: str) -> str:
    return ALIAS_PREFIX + alias


def alias_of_tag(key: str) -> str | None:
    """The alias an emulation tag stands for; None for any other tag."""
    return key[len(ALIAS_PREFIX):] if key.startswith(ALIAS_PREFIX) else None


# on MLflow: a run's create token (a retried create finds the run it made) and the lock model's holder
CREATE_TOKEN = PREFIX + "create_token"
LOCK_OWNER = PREFIX + "lock.owner"
LOCK_EXPIRES = PREFIX + "lock.expires"
