"""Approvals: the record on a model version that someone allowed it to reach a stage.

One approval per version and stage, as the tag `mlops_bot.approval.<alias>` (JSON: by, at, via, where, role),
written once the approver's permission was checked through the forge's API (never taken from a comment or an
environment variable), and logged as an `approval.recorded` event. Recording the same approval again (a
replayed comment, a re-run job) changes nothing.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Literal

from ..config.model import Config
from ..events.bus import emit
from ..events.event import model_subject
from ..registry import tags
from ..registry.base import ModelVersion, Registry

Via = Literal["environment", "review", "comment"]


@dataclass(frozen=True)
class Approval:
    by: str  # the approver's login on the forge
    via: Via  # the mechanism: a deployment environment's reviewers, a pull request review, a ChatOps comment
    where: str  # the URL of the review, the comment or the workflow run
    role: str  # the approver's repository role when it was checked (config.model.ROLES)
    at: str = ""  # ISO 8601 UTC; "" = now, when recorded

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))


def read_approval(version: ModelVersion, alias: str) -> Approval | None:
    """The approval recorded on `version` for stage `alias`; None when there is none (or it is unreadable)."""
    raw = version.tags.get(tags.approval_tag(alias), "")
    try:
        doc = json.loads(raw) if raw else None
        return Approval(**doc) if isinstance(doc, dict) else None
    except (ValueError, TypeError):
        return None


def record_approval(config: Config, registry: Registry, version: ModelVersion, alias: str,
                    approval: Approval) -> tuple[Approval, bool]:
    """Records `approval` of `version` for stage `alias`; returns (the approval on record, whether it is new).
    The same approval (same approver, mechanism and place) is recorded once."""
    known = read_approval(version, alias)
    if known is not None and (known.by, known.via, known.where) == (approval.by, approval.via, approval.where):
        return known, False
    at = approval.at or datetime.now(timezone.utc).isoformat(timespec="seconds")
    stamped = Approval(approval.by, approval.via, approval.where, approval.role, at)
    registry.set_model_version_tag(version.name, version.version, tags.approval_tag(alias), stamped.to_json())
    emit(config, "approval.recorded", model_subject(version.name, version.version), {
        "model": version.name, "version": version.version, "alias": alias, "by": stamped.by, "via": stamped.via,
        "where": stamped.where, "role": stamped.role})
    return stamped, True
