"""The `on:` rules of ml.yaml: which events they match and the actions they run, in order.

A rule matches an event of its type (or a synonym: `alias.moved` ~ `model_version.alias_set`,
`model_version.registered` ~ `model_version.created`) whose fields equal every `where:` value (strings
compared as text; true/false match booleans). Its `do:` actions run in order through ACTIONS
(rules_actions.py); an action answers whether the rule goes on: a closed gate or a failed comparison stops
the rule's remaining actions (`do: [gate, deploy]` deploys only through an open gate). An action that raises
stops the rule too; `serve` retries the event later from that action on, CI mode logs and moves on.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..console import log
from ..errors import BotError

if TYPE_CHECKING:
    from ..config.model import Config, Rule
    from ..registry.base import Registry
    from .bus import Event

SYNONYMS = {"alias.moved": "model_version.alias_set", "model_version.registered": "model_version.created"}


def kind(event_type: str) -> str:
    return SYNONYMS.get(event_type, event_type)


def as_text(value: Any) -> str:
    """Event fields as ml.yaml's `where:` values read (configbuild writes booleans as true/false)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def matches(rule: Rule, event: Event) -> bool:
    if kind(rule.event) != kind(event.type):
        return False
    return all(as_text(event.get(name)) == as_text(want) for name, want in rule.where.items())


@dataclass(frozen=True)
class Step:
    rule: int  # index of the rule in ml.yaml's `on:` list
    action: str
    rule_end: int  # index of the first step of the next rule: where a stopped rule resumes


def plan(rules: Sequence[Rule], event: Event) -> list[Step]:
    """Every action the event sets off, in order: the matching rules' `do:` lists, one after the other."""
    steps: list[Step] = []
    for index, rule in enumerate(rules):
        if matches(rule, event):
            end = len(steps) + len(rule.do)
            steps.extend(Step(index, action, end) for action in rule.do)
    return steps


@dataclass
class ActionContext:
    """What actions share while one event is handled: ml.yaml, the environment and one registry, opened
    when an action first needs it."""

    config: Config
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    opener: Callable[[], Registry] | None = None
    _registry: Registry | None = None

    @property
    def registry(self) -> Registry:
        if self._registry is None:
            if self.opener is not None:
                self._registry = self.opener()
            else:
                from ..registry import open_registry

                self._registry = open_registry(self.config.tracking.uri, self.config.root, self.env)
        return self._registry

    def close(self) -> None:
        if self._registry is not None:
            self._registry.close()
            self._registry = None


Action = Callable[[ActionContext, "Event"], bool]


def actions() -> dict[str, Action]:
    from ..flows.actions import ACTIONS

    return ACTIONS


def run_step(steps: Sequence[Step], index: int, event: Event, context: ActionContext) -> int:
    """Runs steps[index]; returns the index of the next step to run (the next rule's first when the action
    stopped its rule). Raises what the action raised."""
    step = steps[index]
    action = actions().get(step.action)
    if action is None:
        raise BotError(f"on[{step.rule}]: unknown action '{step.action}'; use one of {', '.join(actions())}.")
    log(f"mlops-bot: on[{step.rule}] {event.type} ({event.subject}): {step.action}")
    return index + 1 if action(context, event) else step.rule_end


class RuleHandler:
    """A Bus handler: runs the actions of every rule the event matches (CI mode and nested events)."""

    def __init__(self, config: Config, env: Mapping[str, str] | None = None,
                 opener: Callable[[], Registry] | None = None) -> None:
        self.config, self.env, self.opener = config, env, opener

    def plan(self, event: Event) -> list[Step]:
        return plan(self.config.rules, event)

    def context(self) -> ActionContext:
        return ActionContext(self.config, dict(os.environ) if self.env is None else self.env, self.opener)

    def __call__(self, event: Event) -> None:
        steps = self.plan(event)
        if not steps:
            return
        context = self.context()
        try:
            index = 0
            while index < len(steps):
                try:
                    index = run_step(steps, index, event, context)
                except BotError as exc:
                    step = steps[index]
                    log(f"mlops-bot: on[{step.rule}] {step.action} for {event.type} ({event.id}) failed: {exc}")
                    index = step.rule_end
        finally:
            context.close()
