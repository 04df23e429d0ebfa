"""The history of aliases: one record per move the bot made, kept on the version that received the alias.

Each move is the tag `mlops_bot.moved.<alias>.<ms>` (tags.move_tag) holding compact JSON: alias, version, previous,
at, by, reason ("promote", "rollback: ...", "copy"), verdict, decision, decision_url, approval, where. The registry
is the record: any reader with access to it (one search_model_versions) can answer which version held an alias at
a time T, who moved it there and why. Deployments come from the versions' deploy tags and, where the audit log of
this workspace has them, from its deployment.* events.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..ci.context import CIContext
from ..registry import tags
from ..registry.base import ModelVersion, Registry

TAG_VALUE_LIMIT = 5000  # MLflow's limit on a tag value
DECISION_LIMIT = 1000
FIELD_LIMIT = 500  # a URL, a login, a reason


@dataclass(frozen=True)
class Mover:
    """Who caused a move and where: the CI actor and run URL, or the ChatOps commenter and comment URL."""

    by: str
    where: str


@dataclass(frozen=True)
class Move:
    """One move of `alias` to `version` by the bot."""

    alias: str
    version: str
    previous: str | None  # the version that held the alias before
    stamp: int  # ms since the epoch (also in the tag's name)
    by: str = ""
    reason: str = "promote"
    verdict: str = ""
    decision: str = ""
    decision_url: str = ""
    approval: Mapping[str, Any] | None = None
    where: str = ""

    @property
    def at(self) -> str:
        return iso(self.stamp)

    def as_json(self) -> dict[str, Any]:
        doc = asdict(self)
        del doc["stamp"]
        doc["at"] = self.at
        doc["approval"] = dict(self.approval) if self.approval is not None else None
        return doc

    def tag_value(self) -> str:
        """Compact JSON within MLflow's tag value limit (long fields are cut, the decision first)."""
        doc = self.as_json()
        for key in ("by", "reason", "decision_url", "where"):
            doc[key] = _cut(str(doc[key] or ""), FIELD_LIMIT)
        doc["decision"] = _cut(self.decision, DECISION_LIMIT)
        if doc["approval"] is not None:
            doc["approval"] = {k: _cut(str(v), FIELD_LIMIT) for k, v in doc["approval"].items()}
        text = json.dumps(doc, sort_keys=True, separators=(",", ":"))
        if len(text) > TAG_VALUE_LIMIT:  # unreachable with the limits above; kept as the guarantee
            doc["decision"] = ""
            text = json.dumps(doc, sort_keys=True, separators=(",", ":"))
        return text


def iso(stamp_ms: int) -> str:
    return datetime.fromtimestamp(stamp_ms / 1000, tz=timezone.utc).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def write_move(registry: Registry, model: str, move: Move) -> None:
    """Records `move` on the version that receives the alias (repeating it with the same stamp changes nothing)."""
    registry.set_model_version_tag(model, move.version, tags.move_tag(move.alias, move.stamp), move.tag_value())


def moves_of(versions: Iterable[ModelVersion]) -> list[Move]:
    """Every readable move record on `versions`, oldest first (an unreadable one is skipped, not guessed)."""
    found = []
    for version in versions:
        for key, value in version.tags.items():
            if key.startswith(tags.MOVE_PREFIX):
                move = _parse(key[len(tags.MOVE_PREFIX):], value, version.version)
                if move is not None:
                    found.append(move)
    return sorted(found, key=lambda m: (m.stamp, m.alias, m.version))


def _parse(rest: str, value: str, version: str) -> Move | None:
    alias, _, stamp = rest.rpartition(".")
    try:
        doc = json.loads(value)
    except ValueError:
        return None
    if not (alias and stamp.isdigit() and isinstance(doc, dict)):
        return None
    approval = doc.get("approval")
    return Move(alias=alias, version=version, previous=_text(doc.get("previous")) or None, stamp=int(stamp),
                by=_text(doc.get("by")), reason=_text(doc.get("reason")), verdict=_text(doc.get("verdict")),
                decision=_text(doc.get("decision")), decision_url=_text(doc.get("decision_url")),
                approval=approval if isinstance(approval, dict) else None, where=_text(doc.get("where")))


def _text(value: Any) -> str:
    return value if isinstance(value, str) else "" if value is None else str(value)


def read_moves(registry: Registry, model: str) -> list[Move]:
    from ..errors import NotFound

    try:
        return moves_of(registry.search_model_versions(model))
    except NotFound:  # never registered: no moves
        return []


def latest_move(moves: Sequence[Move], alias: str) -> Move | None:
    return next((m for m in reversed(moves) if m.alias == alias), None)


def holder_at(moves: Sequence[Move], alias: str, stamp_ms: int) -> Move | None:
    """The move that put the version holding `alias` at `stamp_ms` there; None when none had been made yet."""
    return next((m for m in reversed(moves) if m.alias == alias and m.stamp <= stamp_ms), None)


def deploys_of(version: ModelVersion, events: Sequence[Mapping[str, Any]] = ()) -> list[dict[str, str]]:
    """The deployments of `version`: each finished one in the audit log `events` (deployment.* data with the event
    time), and, for a target the log does not mention, the latest status its deploy tags record."""
    found = [{"target": str(e["target"]), "status": str(e["status"]), "at": str(e["at"]), "from": "audit log"}
             for e in events if e.get("version") == version.version]
    logged = {d["target"] for d in found}
    for key, value in version.tags.items():
        if key.startswith(tags.DEPLOY_PREFIX) and key.endswith(".status"):
            target = key[len(tags.DEPLOY_PREFIX):-len(".status")]
            if target not in logged:
                found.append({"target": target, "status": value,
                              "at": version.tags.get(tags.deploy_tag(target, "at"), ""), "from": "registry"})
    return sorted(found, key=lambda d: (d["at"], d["target"]))


def audit_deploys(root: Path, model: str) -> list[dict[str, Any]]:
    """Finished deployments of `model` in the workspace's audit log (none when there is no log)."""
    from ..events.audit import EventLog, events_dir

    found = []
    for event in EventLog(events_dir(root)).read():
        status = event.type.removeprefix("deployment.")
        if status in ("succeeded", "failed") and event.type.startswith("deployment.") \
                and event.data.get("model") == model:
            found.append({"target": event.data.get("target", ""), "status": status, "at": event.time,
                          "version": str(event.data.get("version", ""))})
    return found


def mover_of(context: CIContext) -> Mover:
    """Who moves an alias: from CI the actor of the run, at the run's page; at a terminal, its user."""
    if context.in_ci:
        return Mover(by=context.actor, where=context.run_url)
    import getpass

    try:
        return Mover(by=getpass.getuser(), where="")
    except (OSError, KeyError):  # no login name in the environment or the password database
        return Mover(by="", where="")
