"""Checks of `promote.stages` a schema cannot express: one entry stage, requirements that name a stage and form
no cycle, aliases that do not collide, deploy targets that exist. (Their criteria are checked with compare's, in
semantics.) Reads the raw document defensively, as the other semantic checks do."""

from __future__ import annotations

from typing import Any

from ..errors import Problem
from .lookup import close_match
from .source import Document


def stage_problems(doc: Document) -> list[Problem]:
    promote = doc.data.get("promote")
    promote = promote if isinstance(promote, dict) else {}
    raw = promote.get("stages")
    problems = _protected(doc, promote, raw if isinstance(raw, list) else [])
    if not isinstance(raw, list) or not raw:
        return problems
    stages = [(i, s) for i, s in enumerate(raw) if isinstance(s, dict) and isinstance(s.get("alias"), str)]
    problems += [doc.problem(("promote", key), f"promote.{key} cannot be given with promote.stages: the entry stage "
                            f"(the one without `requires`) sets it; write it in that stage", key=True)
                for key in ("alias", "previous_alias") if key in promote]
    problems += _aliases(doc, stages)
    required = _requirements(doc, stages)
    problems += required
    problems += [] if required else _entry(doc, stages)
    problems += _deploy_names(doc, stages)
    return problems


def _aliases(doc: Document, stages: list[tuple[int, dict[str, Any]]]) -> list[Problem]:
    problems, seen = [], set()
    previous = {_previous(s): i for i, s in stages}
    for i, stage in stages:
        alias = stage["alias"]
        if alias in seen:
            problems.append(doc.problem(("promote", "stages", i, "alias"), f"a stage with the alias '{alias}' "
                                        "exists already; each stage moves its own alias"))
        seen.add(alias)
        if alias in previous:
            owner = next(s["alias"] for j, s in stages if j == previous[alias])
            problems.append(doc.problem(("promote", "stages", i, "alias"), f"'{alias}' is also the previous_alias "
                                        f"of stage '{owner}'; give one of them another name"))
    kept: dict[str, str] = {}
    for i, stage in stages:
        name = _previous(stage)
        if name in kept and stage["alias"] not in kept.values():  # a duplicated stage is reported once, above
            problems.append(doc.problem(("promote", "stages", i, "previous_alias"), f"'{name}' is also the "
                                        f"previous_alias of stage '{kept[name]}'; each stage keeps its own"))
        kept.setdefault(name, stage["alias"])
    return problems


def _previous(stage: dict[str, Any]) -> str:
    value = stage.get("previous_alias")
    return value if isinstance(value, str) else f"previous-{stage['alias']}"


def _requirements(doc: Document, stages: list[tuple[int, dict[str, Any]]]) -> list[Problem]:
    """A stage requiring itself or no stage, and cycles (each stage requires at most one: follow the chain)."""
    aliases = [s["alias"] for _, s in stages]
    requires = {s["alias"]: s["requires"] for _, s in stages if isinstance(s.get("requires"), str)}
    problems, reported = [], set()
    for i, stage in stages:
        alias, wanted = stage["alias"], stage.get("requires")
        if not isinstance(wanted, str):
            continue
        where = ("promote", "stages", i, "requires")
        if wanted == alias:
            problems.append(doc.problem(where, f"stage '{alias}' requires itself; require the stage before it, or "
                                        "remove `requires` from the entry stage"))
        elif wanted not in aliases:
            hint = close_match(wanted, aliases) or f"; the stages are: {', '.join(aliases)}"
            problems.append(doc.problem(where, f"'{wanted}' is not the alias of any stage{hint}"))
        else:
            trail = [alias]
            while trail[-1] in requires and requires[trail[-1]] not in trail and requires[trail[-1]] != trail[-1]:
                trail.append(requires[trail[-1]])
            back = requires.get(trail[-1])
            if back == alias and alias not in reported and len(trail) > 1:
                reported.update(trail)
                shown = " -> ".join([*trail, alias])
                problems.append(doc.problem(where, f"the stages' requirements form a cycle: {shown}; one stage must "
                                            "require none (the entry stage, which a merge moves)"))
    return problems


def _entry(doc: Document, stages: list[tuple[int, dict[str, Any]]]) -> list[Problem]:
    entries = [(i, s["alias"]) for i, s in stages if "requires" not in s]
    if len(entries) == 1 or not stages:
        return []
    if not entries:
        return [doc.problem(("promote", "stages"), "every stage requires another: remove `requires` from the "
                            "first stage (the entry stage, which a merge moves)")]
    names = ", ".join(f"'{a}'" for _, a in entries)
    return [doc.problem(("promote", "stages", i), f"{len(entries)} stages require none ({names}): exactly one is "
                        f"the entry stage a merge moves; give '{alias}' the `requires` of the stage before it")
            for i, alias in entries[1:]]


def _deploy_names(doc: Document, stages: list[tuple[int, dict[str, Any]]]) -> list[Problem]:
    targets = doc.data.get("deploy")
    known = [t["name"] for t in (targets if isinstance(targets, list) else [])
             if isinstance(t, dict) and isinstance(t.get("name"), str)]
    problems = []
    for i, stage in stages:
        names = stage.get("deploy")
        for j, name in enumerate(names if isinstance(names, list) else []):
            if isinstance(name, str) and name not in known:
                hint = close_match(name, known) or (f"; deploy has: {', '.join(known)}" if known else
                                                     "; deploy has no targets")
                problems.append(doc.problem(("promote", "stages", i, "deploy", j),
                                            f"'{name}' is not the name of a deploy target{hint}"))
    return problems


def _protected(doc: Document, promote: dict[str, Any], raw: list[Any]) -> list[Problem]:
    """A protected alias must be one the bot moves (a stage's alias or previous alias): any other would be flagged
    whatever held it."""
    names = promote.get("protected")
    stages = [s for s in raw if isinstance(s, dict) and isinstance(s.get("alias"), str)]
    moved = [a for s in stages for a in (s["alias"], _previous(s))] if raw else [
        str(promote.get("alias", "champion")), str(promote.get("previous_alias", "previous-champion"))]
    problems = []
    for i, name in enumerate(names if isinstance(names, list) else []):
        if isinstance(name, str) and name not in moved:
            hint = close_match(name, moved) or f"; it moves: {', '.join(moved)}"
            problems.append(doc.problem(("promote", "protected", i), f"'{name}' is not an alias mlops-bot moves, so "
                                        f"whatever held it would be flagged{hint}"))
    return problems
