"""The record of the run this workspace's last `mlops-bot run` produced (`.mlops-bot/last-run.json`): one
definition, written by the tracker and read by `compare`/`promote` (lifecycle/champion.py).

Its identity is the tracking store and experiment it belongs to: the tracking URI as ml.yaml gives it,
redacted (no password is written), and the experiment name. A record of another store or experiment is
not this workspace's run there.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..config.model import Config
from ..errors import BotError
from ..support.files import write_atomic
from ..support.state import LAST_RUN_FILE
from ..support.urls import redact
from . import dag
from .cache import load_params, pipeline_key
from .hashing import Hasher

_FORMAT = 2  # 1 had "tracking": [uri, experiment]; such a record is read as none


@dataclass(frozen=True)
class LastRun:
    run_id: str
    pipeline_key: str
    tracking_uri: str  # redacted
    experiment: str

    @classmethod
    def of(cls, config: Config, pipeline_key: str, run_id: str) -> LastRun:
        return cls(run_id, pipeline_key, redact(config.tracking.uri), config.tracking.experiment)

    def belongs_to(self, config: Config) -> bool:
        """Made against the tracking store and experiment `config` names."""
        return (self.tracking_uri, self.experiment) == (redact(config.tracking.uri), config.tracking.experiment)


def read_last_run(state_dir: Path) -> LastRun | None:
    """The record in `state_dir`; None when there is none, or it is damaged or of another format."""
    try:
        doc = json.loads((state_dir / LAST_RUN_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    fields = ("run_id", "pipeline_key", "tracking_uri", "experiment")
    if not isinstance(doc, dict) or doc.get("format") != _FORMAT \
            or not all(isinstance(doc.get(f), str) for f in fields) or not doc["run_id"]:
        return None
    return LastRun(*(str(doc[f]) for f in fields))


def write_last_run(state_dir: Path, record: LastRun) -> None:
    doc = {"format": _FORMAT, "run_id": record.run_id, "pipeline_key": record.pipeline_key,
           "tracking_uri": record.tracking_uri, "experiment": record.experiment}
    write_atomic(state_dir / LAST_RUN_FILE, json.dumps(doc, indent=1))


def workspace_key(config: Config, state_dir: Path) -> str | None:
    """The pipeline key of the workspace as it is now, as `run` computes it (using, not updating, the stat
    cache of hashes); None when it cannot be computed (no pipeline, a params file that cannot be read)."""
    if not config.pipeline:
        return None
    try:
        params = load_params(config.root, config.params_file, config.pipeline)
        graph = dag.edges(config.pipeline, config.path.name)
        return pipeline_key(config.pipeline, graph, Hasher(config.root, state_dir), params)
    except BotError:
        return None
