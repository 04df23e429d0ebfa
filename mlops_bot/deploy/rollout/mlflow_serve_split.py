"""The traffic driver of an `mlflow_serve` target: the new version runs beside the live one (state.json's
`canary`), the nginx front splits requests between their taps by weight, and shadowing is the live version's tap
mirroring a share of its requests to the new one (its shadow.json). Every change runs under the target's lock and
is written to state.json (and the Prometheus scrape file) before the command returns."""

from __future__ import annotations

import json
from pathlib import Path

from ...config.model import DeployTarget
from ...errors import BotError
from ...support.files import write_atomic
from ..base import DeployRequest, DeploySession
from ..front import Front
from ..mlflow_serve import retire, start_verified, sweep
from ..serving import SHADOW_FILE, Server, ServingState, alive, read_state, serving_dir, target_lock, write_state


class Driver:
    def __init__(self, target: DeployTarget, request: DeployRequest, session: DeploySession) -> None:
        if target.port is None:
            raise BotError(f"deploy target '{target.name}' (mlflow_serve) has no port; add port: to it in ml.yaml.")
        self.target, self.request, self.session = target, request, session
        self.directory = serving_dir(session.root, target.name)
        self.front = Front(target.name, self.directory / "front", target.host, target.port)

    def stable(self) -> str | None:
        live = read_state(self.directory, self.target.name).live
        return live.version if live is not None and alive(live.pid) and live.version != self.request.version else None

    def prepare(self) -> dict[str, str]:
        with target_lock(self.directory):
            state = read_state(self.directory, self.target.name)
            sweep(self.directory, state.servers())
            if state.canary is not None:  # a canary of an earlier rollout that never finished
                retire(state.canary)
                state = ServingState(state.target, state.live, state.front_port)
                write_state(self.directory, state)
            server, evidence, started = start_verified(self.target, self.request, self.session, self.directory)
            write_state(self.directory, ServingState(state.target, state.live, self.target.port, server))
        checked = evidence.line() if evidence else "not verified (the target has no verify.rows)"
        beside = "beside the live version" if state.live is not None else "(nothing served before)"
        self.session.echo(f"mlops-bot: deploy {self.target.name}: v{self.request.version} up {beside} in "
                          f"{started:.1f}s; {checked}")
        return evidence.as_tags() if evidence else {"verify": '{"skipped": true}'}

    def split(self, percent: int) -> str:
        with target_lock(self.directory):
            state = read_state(self.directory, self.target.name)
            canary = self._canary(state)
            if state.live is None or percent >= 100:
                self.front.route([(canary.port, 1, canary.version)])
                return f"{self.front.url}: all requests to v{canary.version}"
            self.front.route([(state.live.port, 100 - percent, state.live.version), (canary.port, percent,
                                                                                      canary.version)])
            return f"{self.front.url}: {percent}% of requests to v{canary.version}, {100 - percent}% to " \
                   f"v{state.live.version}"

    def shadow(self, share: int) -> str:
        with target_lock(self.directory):
            state = read_state(self.directory, self.target.name)
            canary = self._canary(state)
            if state.live is None:
                return "nothing serves yet; no shadow traffic"
            path = Path(state.live.directory) / SHADOW_FILE
            if share <= 0:
                path.unlink(missing_ok=True)
                return f"v{state.live.version} stopped mirroring"
            write_atomic(path, json.dumps({"url": canary.url, "version": canary.version, "share": share}) + "\n")
            return f"v{state.live.version} mirrors {share}% of its requests to v{canary.version} (answers compared, " \
                   "not returned)"

    def restore(self) -> str:
        with target_lock(self.directory):
            state = read_state(self.directory, self.target.name)
            if state.live is None:
                raise BotError(f"deploy target '{self.target.name}' has no previous version to give the traffic back "
                               f"to; stop v{self.request.version} with `mlops-bot deploy --stop`.")
            (Path(state.live.directory) / SHADOW_FILE).unlink(missing_ok=True)
            self.front.route([(state.live.port, 1, state.live.version)])
            if state.canary is not None:
                retire(state.canary)
            write_state(self.directory, ServingState(state.target, state.live, state.front_port))
            return f"{self.front.url}: all requests back to v{state.live.version}"

    def finish(self) -> str:
        with target_lock(self.directory):
            state = read_state(self.directory, self.target.name)
            if state.canary is None and state.live is not None and state.live.version == self.request.version:
                return f"{self.front.url}: v{self.request.version} serves all requests"  # finished before
            canary = self._canary(state)
            self.front.route([(canary.port, 1, canary.version)])
            write_state(self.directory, ServingState(state.target, canary, self.target.port))
            if state.live is None:
                return f"{self.front.url}: v{canary.version} serves all requests"
            retire(state.live)
            return f"{self.front.url}: v{canary.version} serves all requests; v{state.live.version} stopped"

    def _canary(self, state: ServingState) -> Server:
        canary = state.canary
        if canary is None or canary.version != self.request.version or not alive(canary.pid):
            raise BotError(f"v{self.request.version} of deploy target '{self.target.name}' is not running beside the "
                           f"live version (see {self.directory / 'state.json'}); run `mlops-bot deploy --target "
                           f"{self.target.name} --version {self.request.version} --force` to start its rollout again.")
        return canary
