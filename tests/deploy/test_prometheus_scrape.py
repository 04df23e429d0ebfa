"""A real tap scraped by a real Prometheus, found through the file_sd file the bot writes: what Prometheus holds
is what was sent (the session's Prometheus, tests/plugins/prometheus_server.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers.prometheus import Prometheus, sd_file
from tests.helpers.serving import save_model, write_rows
from tests.helpers.taps import RunningTap, start_tap

pytestmark = pytest.mark.slow


@pytest.fixture
def tap(tmp_path: Path) -> Iterator[tuple[RunningTap, list[list[float]]]]:
    features, labels = write_rows(tmp_path / "rows.csv")
    save_model(tmp_path / "model", features, labels)
    running = start_tap(tmp_path, tmp_path / "model", "1")
    try:
        yield running, [[float(v) for v in row] for row in features]
    finally:
        running.stop()


def test_prometheus_scrapes_the_tap_it_finds_in_a_file_sd_file(prometheus: Prometheus, tmp_path: Path,
                                                                 tap: tuple[RunningTap, list[list[float]]]) -> None:
    running, rows = tap
    sd = tmp_path / "t.json"
    prometheus.watch(sd)  # before the file exists, as when the bot writes it after the tap is up
    sd_file(sd, running.port, "t")
    up = f'up{{job="mlops-bot",instance="127.0.0.1:{running.port}",mlops_bot_target="t"}}'
    prometheus.wait_for(up, lambda v: v == 1)
    for request in range(7):
        answer = httpx.post(running.url + "/invocations", content=json.dumps({"inputs": rows[2 * request:][:2]}),
                            headers={"content-type": "application/json"}, timeout=30)
        assert answer.status_code == 200
    assert httpx.get(running.url + "/version").status_code == 200
    prometheus.wait_for('sum(mlops_bot_requests_total{target="t",version="1"})', lambda v: v == 8)
    assert prometheus.scalar('sum(mlops_bot_requests_total{target="t",version="1",path="/invocations"})') == 7
    assert prometheus.scalar('sum(mlops_bot_prediction_rows_total{target="t",version="1",mlops_bot_target="t"})') \
        == 14
    series = prometheus.query('mlops_bot_requests_total{path="/invocations"}')
    assert [s["metric"]["instance"] for s in series] == [f"127.0.0.1:{running.port}"]

    prometheus.unwatch(sd)  # the bot drops a stopped version's file: its series go stale
    prometheus.wait_for(f"count({up}) or vector(0)", lambda v: v == 0, timeout=30)
