"""The local state directory `.mlops-bot/` and every name in it: the one place they are spelled.

Everything here is local state (caches, the embedded store, the audit log) and must never be committed:
`local_state_dir` gives each directory a `.gitignore` of `*` when it is created.
"""

from __future__ import annotations

TYPE_CHECKING = False  # pathlib is 3 ms of start-up: the no-op `run` answers without it (mlops_bot/entry.py)
if TYPE_CHECKING:
    from pathlib import Path

STATE_DIR = ".mlops-bot"

# what a command leaves for a later job or for the user
DECISION_FILE = "decision.json"  # the Decision of `ci`, read by `report --decision` in a follow-up job
REPORT_FILE = "report.md"  # default of report.file
DRIFT_REPORT_FILE = "drift.md"  # default of monitor.report
COMMENT_FILE = "comment.md"  # the local forge's stand-in for the pull request comment
PIPELINE_REQUESTS_FILE = "pipeline-requests.jsonl"  # the local forge's record of the CI pipelines asked for

# the pipeline's state
RUN_LOCK_FILE = "run.lock"  # one `run` per project at a time
HASHES_FILE = "hashes.json"  # the stat cache of content hashes
NOOP_FILE = "noop.json"  # the no-op shortcut's record of a fully cached run
LAST_RUN_FILE = "last-run.json"  # the pipeline key and run id of the last run
RUN_METRICS_FILE = "run-metrics.json"  # the metric names the last recorded run holds (config/logged)

# the configuration's state
VALIDATED_FILE = "validated.json"  # keys of ml.yaml documents that passed the JSON Schema (config/checked)

# the embedded store (tracking.uri: local) lives in the state directory itself
STORE_DB = "registry.db"
STORE_ARTIFACTS_DIR = "artifacts"
STEPS_MLFLOW_DB = "mlflow-steps.db"  # the separate mlflow store the steps' own logging goes to

# events: the audit log, and the spools, locks and cursor of `serve` and `watch`
EVENTS_DIR = "events"
AUDIT_FILE = "audit.jsonl"
AUDIT_LOCK_FILE = "audit.lock"
SPOOL_FILE = "spool.db"
SERVE_LOCK_FILE = "serve.lock"
WATCH_SPOOL_FILE = "watch.db"
WATCH_LOCK_FILE = "watch.lock"
WATCH_CURSOR_FILE = "watch.cursor"


def state_path(root: Path, *names: str) -> Path:
    """`root/.mlops-bot/<names...>`: the state directory of the project at `root`, or a path inside it."""
    return root.joinpath(STATE_DIR, *names)


def state_relpath(*names: str) -> str:
    """The same, relative to the project, as ml.yaml and command-line defaults write it ('.mlops-bot/report.md')."""
    return "/".join((STATE_DIR, *names))


def local_state_dir(directory: Path) -> Path:
    """Creates `directory` (and parents) with a `.gitignore` of `*`, so that git never picks it up."""
    directory.mkdir(parents=True, exist_ok=True)
    ignore = directory / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# Written by mlops-bot: local state, never committed.\n*\n")
    return directory
