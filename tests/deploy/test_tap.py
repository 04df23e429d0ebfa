"""The tap with its real parts: `python -m mlops_bot.deploy.tap` leading its process group in front of a real
`mlflow models serve` of a real sklearn MLflow Model, as the bot starts it.

One module-wide pair of taps: v1 (the live version, model A) and v7 (its shadow, model B, which predicts class 1
where A predicts 2), so every expected count is computed from the two sklearn models themselves. Fresh taps for
the process tests (the model server dying; SIGTERM to the group)."""

from __future__ import annotations

import collections
import json
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from mlops_bot.deploy.serving import free_port
from mlops_bot.deploy.tap import VERSION_HEADER
from tests.helpers.serving import save_model, write_rows
from tests.helpers.taps import RunningTap, samples, signal_group, start_tap, value

pytestmark = pytest.mark.slow
JSON = {"content-type": "application/json"}
V1 = {"target": "t", "version": "1"}


@dataclass
class Pair:
    directory: Path
    live: RunningTap
    shadow: RunningTap
    features: Any
    a: Any  # the sklearn model v1 serves
    b: Any  # the one v7 serves

    @property
    def shadow_file(self) -> Path:
        return self.directory / "shadow.json"

    def rows(self, first: int, count: int) -> list[list[float]]:
        return [[float(v) for v in row] for row in self.features[first:first + count]]

    def score(self, rows: list[list[float]]) -> httpx.Response:
        return httpx.post(self.live.url + "/invocations", content=json.dumps({"inputs": rows}), headers=JSON,
                          timeout=30)

    def point_shadow(self, url: str, share: float, version: str = "7") -> None:
        """Written as the bot writes it: whole, by rename."""
        staged = self.shadow_file.with_suffix(".tmp")
        staged.write_text(json.dumps({"url": url, "version": version, "share": share}))
        os.replace(staged, self.shadow_file)


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    directory = tmp_path_factory.mktemp("taps")
    features, labels = write_rows(directory / "rows.csv")
    a = save_model(directory / "model-a", features, labels)
    b = save_model(directory / "model-b", features, [1 if y == 2 else y for y in labels])
    live = start_tap(directory, directory / "model-a", "1", "--shadow-file", str(directory / "shadow.json"))
    try:
        shadow = start_tap(directory, directory / "model-b", "7")
    except BaseException:
        live.stop()
        raise
    try:
        yield Pair(directory, live, shadow, features, a, b)
    finally:
        live.stop()
        shadow.stop()


def test_the_tap_answers_as_mlflow_models_serve_does_with_the_version_header(pair: Pair) -> None:
    direct = pair.live.upstream()
    body = json.dumps({"inputs": pair.rows(0, 5)})
    for method, path, content in (("POST", "/invocations", body), ("POST", "/invocations", "{not json"),
                                  ("GET", "/version?x=1", None), ("GET", "/no-such-page", None)):
        tapped = httpx.request(method, pair.live.url + path, content=content, headers=JSON, timeout=30)
        served = httpx.request(method, direct + path, content=content, headers=JSON, timeout=30)
        assert (tapped.status_code, tapped.content) == (served.status_code, served.content), (method, path)
        assert tapped.headers.get("content-type") == served.headers.get("content-type")
        assert tapped.headers[VERSION_HEADER] == "1" and VERSION_HEADER not in served.headers
    assert json.loads(httpx.post(pair.live.url + "/invocations", content=body, headers=JSON).content) == \
        {"predictions": [int(p) for p in pair.a.predict(pair.features[:5])]}


def test_the_metrics_count_requests_rows_values_and_the_mean_prediction_exactly(pair: Pair) -> None:
    before, sent = samples(pair.live.url), list[int]()
    for request in range(6):
        rows = pair.rows(10 + 4 * request, 4)
        assert pair.score(rows).status_code == 200
        sent.extend(int(p) for p in pair.a.predict(rows))
    assert httpx.get(pair.live.url + "/version").status_code == 200
    assert httpx.get(pair.live.url + "/health").status_code == 200  # a probe: not counted
    after = samples(pair.live.url)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **V1, **labels) - value(before, name, **V1, **labels)

    assert delta("mlops_bot_requests_total", path="/invocations", code="200") == 6
    assert delta("mlops_bot_requests_total", path="other", code="200") == 1
    assert delta("mlops_bot_request_duration_seconds_count") == 6
    assert delta("mlops_bot_prediction_rows_total") == 24
    assert {str(k): v for k, v in collections.Counter(sent).items()} == \
        {label: delta("mlops_bot_predictions_total", value=label) for label in ("0", "1", "2")
         if delta("mlops_bot_predictions_total", value=label)}
    assert (delta("mlops_bot_prediction_count"), delta("mlops_bot_prediction_sum")) == (24, sum(sent))


def test_a_share_of_the_requests_goes_to_the_shadow_and_its_rows_are_compared(pair: Pair) -> None:
    before, shadow_before = samples(pair.live.url), samples(pair.shadow.url)
    pair.point_shadow(pair.shadow.url, 50)
    agree = disagree = 0
    try:
        for request in range(10):
            rows = pair.rows(40 + 3 * request, 3)
            answer = pair.score(rows)
            mine = [int(p) for p in pair.a.predict(rows)]
            assert answer.json() == {"predictions": mine} and answer.headers[VERSION_HEADER] == "1"
            if request % 2 == 1:  # 50%: every second request, exactly
                theirs = [int(p) for p in pair.b.predict(rows)]
                agree += sum(x == y for x, y in zip(mine, theirs, strict=True))
                disagree += sum(x != y for x, y in zip(mine, theirs, strict=True))
        assert agree and disagree, "the rows chosen must show both outcomes"
        outcomes = _shadow_rows(pair, before, 15)
        assert outcomes == {"agree": agree, "disagree": disagree, "error": 0, "skipped": 0}
        assert _invocations(pair.shadow.url) - value(shadow_before, "mlops_bot_requests_total",
                                                     path="/invocations") == 5
    finally:
        pair.shadow_file.unlink()
    seen_by_shadow = _invocations(pair.shadow.url)
    for request in range(10):
        assert pair.score(pair.rows(3 * request, 3)).status_code == 200
    time.sleep(1)
    assert _invocations(pair.shadow.url) == seen_by_shadow
    assert _shadow_rows(pair, before, 15) == {"agree": agree, "disagree": disagree, "error": 0, "skipped": 0}


def test_a_shadow_that_does_not_answer_counts_errors_and_a_broken_file_sends_nothing(pair: Pair) -> None:
    before = samples(pair.live.url)
    pair.point_shadow(f"http://127.0.0.1:{free_port()}", 100, version="9")
    try:
        for request in range(2):
            assert pair.score(pair.rows(3 * request, 3)).status_code == 200
        assert _shadow_rows(pair, before, 6, version="9") == {"agree": 0, "disagree": 0, "error": 6, "skipped": 0}
        pair.shadow_file.write_text('{"url": "http://127.0.0.1:1", "share": 100}')
        assert pair.score(pair.rows(0, 3)).status_code == 200
        time.sleep(0.5)
        assert _shadow_rows(pair, before, 6, version="9")["error"] == 6
        assert f"{pair.shadow_file}: 'version' is None" in pair.live.log()
    finally:
        pair.shadow_file.unlink()


def test_the_tap_exits_when_its_model_server_dies_and_leaves_no_process(pair: Pair) -> None:
    tap = start_tap(pair.directory, pair.directory / "model-a", "2")
    try:
        mlflow = next(pid for pid in tap.group() if pid != tap.process.pid and _is_mlflow_cli(pid))
        os.kill(mlflow, signal.SIGKILL)
        assert tap.process.wait(timeout=30) == 1
        assert _group_gone(tap), tap.group()
        assert "mlflow models serve exited with -9" in tap.log()
    finally:
        tap.stop()


@pytest.mark.parametrize("to", ["group", "tap"])
def test_sigterm_stops_every_process_of_the_group_and_the_tap_exits_0(pair: Pair, to: str) -> None:
    """To the group: how the bot stops a version (serving.stop_group). To the tap alone: it stops mlflow itself."""
    tap = start_tap(pair.directory, pair.directory / "model-a", "3")
    try:
        assert len(tap.group()) >= 3  # the tap, mlflow's CLI, its uvicorn
        if to == "group":
            signal_group(tap, signal.SIGTERM)
        else:
            tap.process.send_signal(signal.SIGTERM)
        assert tap.process.wait(timeout=30) == 0
        assert _group_gone(tap), tap.group()
        assert "stopped (SIGTERM)" in tap.log()
    finally:
        tap.stop()


def _shadow_rows(pair: Pair, before: dict[Any, float], total: int, version: str = "7") -> dict[str, float]:
    """The shadow's rows by outcome since `before`, once `total` of them are counted (bounded wait)."""
    deadline = time.monotonic() + 30
    while True:
        now = samples(pair.live.url)
        outcomes = {outcome: value(now, "mlops_bot_shadow_rows_total", target="t", version=version, baseline="1",
                                   outcome=outcome) - value(before, "mlops_bot_shadow_rows_total", version=version,
                                                            outcome=outcome)
                    for outcome in ("agree", "disagree", "error", "skipped")}
        if sum(outcomes.values()) >= total or time.monotonic() > deadline:
            return outcomes
        time.sleep(0.1)


def _invocations(url: str) -> float:
    return value(samples(url), "mlops_bot_requests_total", path="/invocations")


def _is_mlflow_cli(pid: int) -> bool:
    return b"models\0serve" in Path(f"/proc/{pid}/cmdline").read_bytes()


def _group_gone(tap: RunningTap, timeout: float = 15) -> bool:
    deadline = time.monotonic() + timeout
    while tap.group() and time.monotonic() < deadline:
        time.sleep(0.1)
    return not tap.group()
