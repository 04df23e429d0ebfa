"""The Event: every action of the bot and every change it observes, as one CloudEvents-like record
(`schemas/event.schema.json`).

The bot's own events: run.started, run.finished, step.cached, decision.made, model_version.registered,
alias.moved, deployment.started/succeeded/failed, report.posted, approval.recorded, model_version.copied,
drift.detected, drift.checked. From outside (`serve`, `watch`):
model_version.created, model_version.alias_set, model_version.alias_deleted, model_version.tag_set,
model_version.tag_deleted, registered_model.created, run.finished, github.<event>, gitlab.<event>.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

SPEC_VERSION = "1.0"
SOURCE = "mlops-bot"


def new_id() -> str:
    return uuid.uuid4().hex


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Event:
    type: str
    subject: str
    data: Mapping[str, Any] = field(default_factory=dict)
    source: str = SOURCE
    id: str = field(default_factory=new_id)
    time: str = field(default_factory=now_iso)

    def to_dict(self) -> dict[str, Any]:
        return {"specversion": SPEC_VERSION, "id": self.id, "type": self.type, "source": self.source,
                "subject": self.subject, "time": self.time, "data": dict(self.data)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), default=str)

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Event:
        data = doc.get("data") or {}
        if not isinstance(data, Mapping) or not all(isinstance(doc[k], str) for k in ("id", "type", "time")):
            raise ValueError("not an event document")
        return cls(type=doc["type"], subject=str(doc.get("subject", "")), data=dict(data),
                   source=str(doc.get("source", "")), id=doc["id"], time=doc["time"])

    def get(self, name: str) -> Any:
        """A field for `where:` filters: id, type, source, subject, time, or a key of data."""
        if name in ("id", "type", "source", "subject", "time"):
            return getattr(self, name)
        return self.data.get(name)

    @property
    def partition(self) -> str:
        """Events with the same partition are handled one after the other, in order (one model's life)."""
        return str(self.data.get("model") or self.data.get("repository") or self.data.get("project") or self.subject)


def model_subject(model: str, version: str | int | None = None) -> str:
    return f"models/{model}" + (f"/versions/{version}" if version not in (None, "") else "")
