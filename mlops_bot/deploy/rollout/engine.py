"""The rollout loop, the same for every platform: shadow (optional), then each step's traffic, held while the
analysis passes; a failing query aborts at once, rolling traffic back (the driver), the alias back (the
caller's `on_abort`) and emitting `deployment.rolled_back`.

One `tick` does what is due now and says when to look again; `drive` ticks until the rollout ends (or once,
handing off). Everything a later process needs is written to the version before it acts (state.py), so a tick
can run in any process: the deploying one, `mlops-bot rollout`, `watch`.

Holds: a step's analysis runs every `interval` while it holds; the step passes when its hold is over and every
query passed. A query without data holds the step up to one more hold, then aborts: a rollout never advances
on no evidence. A step without hold takes effect and passes without analysis (nothing could be measured).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

from ...config.durations import spoken
from ...config.model import Analysis, DeployTarget, Rollout
from ...registry.base import ModelVersion, Registry
from . import analysis as judged
from .state import RolloutState, now_ms, write_state
from .traffic import TrafficSplit

Emit = Callable[[str, Mapping[str, object]], None]
OnAbort = Callable[[str, str], str]  # (stable version, reason) -> what it did with the alias

# The agreement of shadowed rows, from the tap's counters (deploy/tap_metrics.py) of the stable version's tap.
SHADOW_QUERY = ('sum(mlops_bot_shadow_rows_total{target="$target",version="$version",outcome="agree"}) / '
                'sum(mlops_bot_shadow_rows_total{target="$target",version="$version",outcome=~"agree|disagree"})')


@dataclass(frozen=True)
class Progress:
    state: RolloutState
    detail: str
    due_ms: int | None = None  # when a tick has something to do again; None once the rollout ended


@dataclass
class Hooks:
    emit: Emit
    on_abort: OnAbort
    measure: judged.Measure  # a filled-in query -> its number
    now: Callable[[], int] = now_ms
    sleep: Callable[[float], None] = time.sleep
    # One tick at a time per rollout, across processes (deploy, `rollout`, watch, serve), each from the state
    # on record: a tick holds `exclusive` and starts from `reload()` (None: keep what it has).
    exclusive: Callable[[], AbstractContextManager[object]] = contextlib.nullcontext
    reload: Callable[[], RolloutState | None] = lambda: None


@dataclass
class Engine:
    target: DeployTarget
    version: ModelVersion
    registry: Registry
    driver: TrafficSplit
    hooks: Hooks
    state: RolloutState | None = None
    echo: Callable[[str], None] = field(default=lambda _line: None)

    @property
    def plan(self) -> Rollout:
        assert self.target.rollout is not None
        return self.target.rollout

    def begin(self, stable: str | None) -> RolloutState:
        """The first state: shadow when configured and something serves, else the first step."""
        now, last = self.hooks.now(), len(self.plan.steps) - 1
        if stable is None:  # nothing to split with: the version takes all traffic (the last step, its hold)
            state = RolloutState("step", last, self.plan.steps[last].traffic, None, started_ms=now)
        elif self.plan.shadow is not None:
            state = RolloutState("shadow", -1, 0, stable, started_ms=now)
        else:
            state = RolloutState("step", 0, self.plan.steps[0].traffic, stable, started_ms=now)
        self._save(state)
        self.hooks.emit("rollout.started", {"previous_version": stable, "steps": [s.traffic for s in self.plan.steps],
                                            "shadow": state.phase == "shadow"})
        return state

    def drive(self, wait: bool) -> Progress:
        """Ticks until the rollout ends; without `wait`, returns after the first tick that has to wait."""
        while True:
            with self.hooks.exclusive():
                self.state = self.hooks.reload() or self.state
                progress = self.tick()
            if progress.due_ms is None or not wait:
                return progress
            self.hooks.sleep(max(0.0, (progress.due_ms - self.hooks.now()) / 1000))

    def stop(self, reason: str) -> Progress:
        """Aborts the rollout now, whatever its analysis says (e.g. `mlops-bot rollback` took the version out)."""
        with self.hooks.exclusive():
            self.state = self.hooks.reload() or self.state
            state = self._current()
            if not state.active:
                return Progress(state, _ended(state))
            return self._abort(state, reason, state.findings)

    def tick(self) -> Progress:
        state = self._current()
        while True:
            if state.phase == "aborting":
                return self._abort(state, state.reason, state.findings)
            if not state.active:
                return Progress(state, _ended(state))
            if state.since_ms == 0:
                state = self._apply(state)
            outcome = self._hold(state)
            if isinstance(outcome, Progress):
                return outcome
            state = self._next(state, outcome)

    def _current(self) -> RolloutState:
        if self.state is None:
            raise AssertionError("begin() or a state read from the version comes first")
        return self.state

    def _apply(self, state: RolloutState) -> RolloutState:
        if state.phase == "shadow":
            assert self.plan.shadow is not None
            detail = self.driver.shadow(self.plan.shadow.share)
        elif state.traffic >= 100:
            detail = self.driver.split(100)
        else:
            detail = self.driver.split(state.traffic)
        state = state.to(since_ms=self.hooks.now(), findings=[])
        self._save(state)
        hold = self._hold_s(state)
        self.hooks.emit("rollout.step_started", {**self._where(state), "hold_s": hold, "detail": detail})
        self.echo(f"{self._name(state)}: {detail}" + (f"; holding {spoken(hold)}" if hold else ""))
        return state

    def _hold(self, state: RolloutState) -> Progress | list[judged.Finding]:
        """Progress while the phase holds (or aborted); its findings once it passed."""
        hold_ms, now = int(self._hold_s(state) * 1000), self.hooks.now()
        if hold_ms == 0:
            return []
        findings = judged.analyse(self._analyses(state), self.hooks.measure, self._values(state))
        bad = judged.failed(findings)
        if bad:
            return self._abort(state, f"{self._name(state)}: " + "; ".join(f.line() for f in bad),
                               [f.as_json() for f in findings])
        self._save(state.to(findings=[f.as_json() for f in findings]))
        elapsed, interval = now - state.since_ms, int(self.plan.interval_s * 1000)
        if elapsed < hold_ms:
            until = state.since_ms + hold_ms
            return Progress(self.state or state, f"{self._name(state)}: holding until {_clock(until)}",
                            min(now + interval, until))
        missing = judged.waiting(findings)
        if missing and elapsed < 2 * hold_ms:
            names = ", ".join(f.name for f in missing)
            return Progress(self.state or state, f"{self._name(state)}: waiting for data ({names})", now + interval)
        if missing:
            return self._abort(state, f"{self._name(state)}: no data for {', '.join(f.name for f in missing)} within "
                               f"{spoken(2 * hold_ms / 1000)}; the rollout does not advance without evidence",
                               [f.as_json() for f in findings])
        return findings

    def _next(self, state: RolloutState, findings: list[judged.Finding]) -> RolloutState:
        self.hooks.emit("rollout.step_passed", {**self._where(state), "analysis": [f.as_json() for f in findings]})
        if state.phase == "shadow":
            agreement = next((f.value for f in findings if f.name == "shadow-agreement"), None)
            self.hooks.emit("rollout.shadow_reported", {**self._where(state), "agreement": agreement,
                                                        "share": self.plan.shadow.share if self.plan.shadow else None})
            self.echo(f"shadow: agreement with v{state.stable} "
                      f"{'not measured' if agreement is None else f'{agreement:.2%}'}")
            self.driver.shadow(0)
            following = RolloutState("step", 0, self.plan.steps[0].traffic, state.stable, started_ms=state.started_ms)
        elif state.step + 1 < len(self.plan.steps):
            nxt = state.step + 1
            following = state.to(step=nxt, traffic=self.plan.steps[nxt].traffic, since_ms=0, findings=[])
        else:
            detail = self.driver.finish()
            done = state.to(phase="completed", since_ms=self.hooks.now())
            self._save(done)
            self.hooks.emit("rollout.completed", {**self._where(done), "detail": detail})
            return done
        self._save(following)
        return following

    def _abort(self, state: RolloutState, reason: str, findings: list[dict[str, object]]) -> Progress:
        aborting = state.to(phase="aborting", reason=reason, findings=findings)
        self._save(aborting)  # first: a process killed from here on finishes the abort when it resumes
        traffic = self.driver.restore()
        alias = self.hooks.on_abort(state.stable, reason) if state.stable else "no previous version to restore"
        done = aborting.to(phase="aborted", traffic=0)
        self._save(done)
        self.hooks.emit("deployment.rolled_back", {**self._where(state), "reason": reason, "analysis": findings,
                                                   "restored": traffic, "alias_moves": alias})
        self.echo(f"rollout aborted: {reason}; {traffic}; {alias}")
        return Progress(done, f"rolled back: {reason}")

    def _analyses(self, state: RolloutState) -> list[Analysis]:
        found = list(self.plan.analysis)
        if state.phase == "shadow" and self.plan.shadow is not None:
            found.append(Analysis("shadow-agreement", SHADOW_QUERY, min=self.plan.shadow.min_agreement))
        return found

    def _values(self, state: RolloutState) -> dict[str, str]:
        return {"version": self.version.version, "previous": state.stable or "", "target": self.target.name,
                "model": self.version.name}

    def _hold_s(self, state: RolloutState) -> float:
        if state.phase == "shadow":
            return self.plan.shadow.hold_s if self.plan.shadow else 0.0
        return self.plan.steps[state.step].hold_s

    def _where(self, state: RolloutState) -> dict[str, object]:
        return {"phase": state.phase, "rollout_step": state.step + 1, "rollout_steps": len(self.plan.steps),
                "traffic": state.traffic, "previous_version": state.stable}

    def _name(self, state: RolloutState) -> str:
        if state.phase == "shadow":
            share = self.plan.shadow.share if self.plan.shadow else 0
            return f"shadow ({share}% mirrored)"
        return f"step {state.step + 1}/{len(self.plan.steps)} ({state.traffic}%)"

    def _save(self, state: RolloutState) -> None:
        write_state(self.registry, self.version, self.target.name, state)
        self.state = state


def _ended(state: RolloutState) -> str:
    return f"rolled back: {state.reason}" if state.phase == "aborted" else "rolled out: all traffic to the new version"


def _clock(ms: int) -> str:
    return time.strftime("%H:%M:%S UTC", time.gmtime(ms / 1000))
