"""Aliases emulated with model-version tags, for registries without the alias API (GitLab, Azure ML).

The version holding alias `champion` carries the tag `mlops-bot.alias.champion` (tags.alias_tag) whose
value is the time (ms) it was set. Moving an alias sets the tag on the new version first and then clears it
from the others, so a reader never sees no holder; if a crash leaves two, the newest stamp wins.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace

from .base import ModelVersion
from .tags import alias_of_tag, alias_tag
from .validation import check_alias


def holders(versions: Sequence[ModelVersion]) -> dict[str, str]:
    """alias -> version, from the tags (the newest stamp wins when two versions carry the same alias)."""
    best: dict[str, tuple[int, str]] = {}
    for version in versions:
        for key, value in version.tags.items():
            alias = alias_of_tag(key)
            if alias is None or not value:
                continue
            stamp = int(value) if value.isdigit() else 0
            if alias not in best or (stamp, _order(version.version)) > (best[alias][0], _order(best[alias][1])):
                best[alias] = (stamp, version.version)
    return {alias: version for alias, (_, version) in best.items()}


def _order(version: str) -> tuple[int, ...]:
    parts = version.split(".")
    return tuple(int(p) for p in parts) if all(p.isdigit() for p in parts) else (-1,)


def present(version: ModelVersion, alias_map: dict[str, str]) -> ModelVersion:
    """The version as the native API would show it: alias tags hidden, `aliases` filled."""
    tags = {k: v for k, v in version.tags.items() if alias_of_tag(k) is None}
    names = tuple(sorted(a for a, v in alias_map.items() if v == version.version))
    return replace(version, tags=tags, aliases=names)


class TagAliases:
    """The alias operations over three primitives of the adapter that uses it."""

    def __init__(self, list_raw: Callable[[str], list[ModelVersion]],
                 set_tag: Callable[[str, str, str, str], None],
                 clear_tag: Callable[[str, str, str], None], error_context: Callable[[], tuple[str, str]]) -> None:
        self._list_raw = list_raw
        self._set_tag = set_tag
        self._clear_tag = clear_tag
        self._context = error_context  # (service, where) for errors found before any request

    def _check(self, alias: str) -> None:
        check_alias(alias, *self._context())

    def aliases(self, name: str) -> dict[str, str]:
        return holders(self._list_raw(name))

    def set(self, name: str, alias: str, version: str) -> None:
        self._check(alias)
        key = alias_tag(alias)
        self._set_tag(name, version, key, str(time.time_ns() // 1_000_000))
        for other in self._list_raw(name):
            if other.version != version and other.tags.get(key):
                self._clear_tag(name, other.version, key)

    def get(self, name: str, alias: str) -> str | None:
        self._check(alias)
        return self.aliases(name).get(alias)

    def delete(self, name: str, alias: str) -> None:
        self._check(alias)
        key = alias_tag(alias)
        for version in self._list_raw(name):
            if version.tags.get(key):
                self._clear_tag(name, version.version, key)
