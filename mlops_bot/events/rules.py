"""The `on:` rules of ml.yaml: which events they match and the actions they run, in order.

A rule matches an event of its type (or a synonym: `alias.moved` ~ `model_version.alias_set`,
`model_version.registered` ~ `model_version.created`) whose fields equal every `where:` value (strings
compared as text; true/false match booleans). Its `do:` actions run in order through the ActionRunner that
the owner of the Bus hands in (flows/actions.py); an action answers whether the rule goes on: a closed gate
or a failed comparison stops the rule's remaining actions (`do: [gate, deploy]` deploys only through an open
gate). An action that raises stops the rule too; `serve` retries the event later from that action on, CI
mode logs and moves on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from ..console import log
from ..errors import BotError

if TYPE_CHECKING:
    from ..config.model import Rule
    from .event import Event

SYNONYMS = {"alias.moved": "model_version.alias_set", "model_version.registered": "model_version.created"}


def kind(event_type: str) -> str:
    return SYNONYMS.get(event_type, event_type)


def as_text(value: Any) -> str:
    """Event fields as ml.yaml's `where:` values read (config/build.py writes booleans as true/false)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def matches(rule: Rule, event: Event) -> bool:
    if kind(rule.event) != kind(event.type):
        return False
    return all(as_text(event.get(name)) == as_text(want) for name, want in rule.where.items())


@dataclass(frozen=True)
class PlannedAction:
    rule: int  # index of the rule in ml.yaml's `on:` list
    action: str
    rule_end: int  # index of the first action of the next rule: where a stopped rule resumes


def plan(rules: Sequence[Rule], event: Event) -> list[PlannedAction]:
    """Every action the event sets off, in order: the matching rules' `do:` lists, one after the other."""
    planned: list[PlannedAction] = []
    for index, rule in enumerate(rules):
        if matches(rule, event):
            end = len(planned) + len(rule.do)
            planned.extend(PlannedAction(index, action, end) for action in rule.do)
    return planned


class ActionRunner(Protocol):
    """Runs `on:` actions by name for one event; the flows provide it (flows/actions.py), so that this
    module imports no flow."""

    def run(self, action: str, event: Event) -> bool:
        """Does `action` for `event`; False stops the rest of its rule."""
        ...

    def close(self) -> None: ...


def perform(planned: Sequence[PlannedAction], index: int, event: Event, runner: ActionRunner) -> int:
    """Runs planned[index]; returns the index of the next action to run (the next rule's first when the action
    stopped its rule). Raises what the action raised."""
    action = planned[index]
    log(f"mlops-bot: on[{action.rule}] {event.type} ({event.subject}): {action.action}")
    return index + 1 if runner.run(action.action, event) else action.rule_end


class RuleHandler:
    """A Bus handler: runs the actions of every rule the event matches, one runner per event."""

    def __init__(self, rules: Sequence[Rule], runner: Callable[[], ActionRunner]) -> None:
        self.rules, self.runner = tuple(rules), runner

    def plan(self, event: Event) -> list[PlannedAction]:
        return plan(self.rules, event)

    def __call__(self, event: Event) -> None:
        planned = self.plan(event)
        if not planned:
            return
        runner = self.runner()
        try:
            index = 0
            while index < len(planned):
                try:
                    index = perform(planned, index, event, runner)
                except BotError as exc:
                    action = planned[index]
                    log(f"mlops-bot: on[{action.rule}] {action.action} for {event.type} ({event.id}) failed: {exc}")
                    index = action.rule_end
        finally:
            runner.close()
