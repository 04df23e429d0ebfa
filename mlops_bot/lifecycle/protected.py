"""Protected aliases moved by hand: a protected alias whose holder is not the version the bot's latest move record
names (or that is held with no record at all, or was removed) was changed outside mlops-bot's promotion path.
`status` shows it and `gate` closes on it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..config.model import Config
from ..registry import alias_holder
from ..registry.base import Registry
from .history import Move, latest_move, read_moves


@dataclass(frozen=True)
class HandMoved:
    alias: str
    holder: str | None  # the version holding the alias now
    recorded: Move | None  # the bot's latest move of it
    detail: str

    def as_json(self) -> dict[str, Any]:
        return {"alias": self.alias, "holder": self.holder,
                "recorded": self.recorded.version if self.recorded else None, "detail": self.detail}


def hand_moved(config: Config, registry: Registry, aliases: Iterable[str] | None = None) -> list[HandMoved]:
    """The protected aliases (of `aliases`, default all of them) whose holder the bot's records do not explain."""
    wanted = [a for a in config.promote.protected if aliases is None or a in set(aliases)]
    if not wanted:
        return []
    moves = read_moves(registry, config.model.name)
    found = []
    for alias in wanted:
        holder = alias_holder(registry, config.model.name, alias)
        recorded = latest_move(moves, alias)
        have = holder.version if holder else None
        if have != (recorded.version if recorded else None):
            found.append(HandMoved(alias, have, recorded, _detail(config, alias, have, recorded)))
    return found


def _detail(config: Config, alias: str, holder: str | None, recorded: Move | None) -> str:
    stage = config.promote.stage(alias)
    flag = f" --stage {alias}" if stage is not None and stage.requires is not None else ""
    if recorded is None:
        return (f"{alias} points at v{holder}, but mlops-bot has no record of moving it: it was moved outside "
                f"mlops-bot's promotion path; promote a version through mlops-bot, or adopt v{holder} with "
                f"`mlops-bot rollback{flag} --to {holder}`")
    who = f" by {recorded.by}" if recorded.by else ""
    now = f"points at v{holder}" if holder is not None else "is not set"
    return (f"{alias} {now}, but mlops-bot last moved it to v{recorded.version} ({recorded.at}{who}): it was moved "
            f"outside mlops-bot's promotion path; move it back with `mlops-bot rollback{flag} --to "
            f"{recorded.version}` or promote through mlops-bot")
