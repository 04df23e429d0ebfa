"""Names of the tags mlops-bot writes on model versions: lineage, verdicts, deployments.

One place, so that promote writes what gate, status and rollback read. Run tags live beside the
pipeline (pipeline/tracking.py) and share the prefix.
"""

from __future__ import annotations

PREFIX = "mlops_bot."

# lineage, written when a version is registered
COMMIT = PREFIX + "git.commit"
BRANCH = PREFIX + "git.branch"
REPOSITORY = PREFIX + "git.repository"
PULL_REQUEST = PREFIX + "pull_request"
RUN_ID = PREFIX + "run_id"
RUN_URL = PREFIX + "run_url"
CONFIG_DIGEST = PREFIX + "config_digest"
DATA_HASH = PREFIX + "data_hash"

# the decision that judged the version
VERDICT = PREFIX + "verdict"  # pass | fail
DECISION_SUMMARY = PREFIX + "decision"
DECISION_URL = PREFIX + "decision_url"
COMPARED_WITH = PREFIX + "compared_with"  # champion version it was judged against, or "bootstrap"

# life as champion
PROMOTED_AT = PREFIX + "promoted_at"
REPLACED_BY = PREFIX + "replaced_by"
ROLLED_BACK = PREFIX + "rolled_back"  # why it was taken out of service


def deploy_status(target: str) -> str:
    return f"{PREFIX}deploy.{target}.status"


def deploy_detail(target: str) -> str:
    return f"{PREFIX}deploy.{target}.detail"
