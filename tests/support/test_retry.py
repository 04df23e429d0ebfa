"""One Retry-After parser and one wait policy (support/retry.py), used by both HTTP callers: the registry
client and the webhook deploy target once parsed the header apart, and only one accepted '1.5'."""

from __future__ import annotations

import email.utils
import random
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from mlops_bot.deploy import webhook
from mlops_bot.registry.mlflow.http import MlflowHttp
from mlops_bot.registry.mlflow.http import RetryPolicy as RegistryPolicy
from mlops_bot.support.retry import Retrier, RetryPolicy, parse_retry_after

NOW = 1_700_000_000.0


def http_date(seconds_from_now: float, now: float) -> str:
    return email.utils.formatdate(now + seconds_from_now, usegmt=True)


@pytest.mark.parametrize(("value", "expected"), [
    ("120", 120.0), ("1.5", 1.5), (" 0 ", 0.0), ("0.25", 0.25),
    (http_date(30, NOW), 30.0), (http_date(-30, NOW), 0.0),
    ("Tue, 14 Nov 2023 22:13:50 -0000", 30.0),  # a date without zone information is GMT all the same
    (None, None), ("", None), ("soon", None), ("-1", None), ("nan", None), ("inf", None),
])
def test_retry_after_is_delta_seconds_fractional_or_an_http_date(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, now=lambda: NOW) == (None if expected is None else pytest.approx(expected))


def test_the_wait_is_the_servers_capped_or_a_jittered_backoff_within_the_budget() -> None:
    retrier = Retrier(RetryPolicy(initial_wait=1.0, max_wait=4.0, retry_after_cap=10.0), rng=random.Random(7))
    assert retrier.wait(1, 1.5) == 1.5
    assert retrier.wait(1, 3600.0) == 10.0
    assert retrier.wait(1, 3600.0, remaining=2.0) == 2.0
    for attempt, ceiling in ((1, 1.0), (2, 2.0), (3, 4.0), (9, 4.0)):
        assert ceiling / 2 <= retrier.wait(attempt, None) <= ceiling  # doubling, capped, jittered in the upper half


def test_a_call_stops_after_its_attempts_and_reraises_the_last_failure() -> None:
    class Busy(Exception):
        retry_after = 0.5

    slept: list[float] = []
    seen: list[tuple[int, float]] = []
    calls: list[int] = []

    def operation() -> None:
        calls.append(1)
        raise Busy("busy")

    retrier = Retrier(RetryPolicy(attempts=3), sleep=slept.append)
    with pytest.raises(Busy):
        retrier.call(operation, Busy, lambda failure, attempt, wait: seen.append((attempt, wait)))
    assert len(calls) == 3 and slept == [0.5, 0.5] and seen == [(1, 0.5), (2, 0.5)]


class Scripted:
    """Answers every request (any method) from a script of (status, headers), then 200 with `{}`."""

    def __init__(self, *script: tuple[int, dict[str, str]]) -> None:
        self.script = list(script)
        state = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, headers = state.script.pop(0) if state.script else (200, {})
                self.send_response(status)
                for key, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            do_GET = do_POST = _answer

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def scripted() -> Iterator[Callable[..., Scripted]]:
    made: list[Scripted] = []

    def make(*script: tuple[int, dict[str, str]]) -> Scripted:
        made.append(Scripted(*script))
        return made[-1]

    yield make
    for server in made:
        server.server.shutdown()
        server.server.server_close()


def registry_call(url: str, slept: list[float]) -> None:
    http = MlflowHttp(url, {}, retry=RegistryPolicy(total_seconds=300.0, retry_after_cap=60.0), sleep=slept.append)
    try:
        assert http.json("GET", "runs/get", params={"run_id": "x"}) == {}
    finally:
        http.close()


def webhook_call(url: str, slept: list[float]) -> None:
    options = webhook.DeliveryOptions(attempts=3, echo=lambda _: None, sleep=slept.append)
    assert webhook.deliver(url + "/deploy", b"{}", {}, options) == 200


CALLERS = {"registry client": registry_call, "webhook target": webhook_call}


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("status", [429, 503])
def test_both_callers_honour_a_fractional_retry_after(scripted: Callable[..., Scripted], caller: str,
                                                     status: int) -> None:
    server = scripted((status, {"Retry-After": "1.5"}))
    slept: list[float] = []
    CALLERS[caller](server.url, slept)
    assert slept == [1.5]


@pytest.mark.parametrize("caller", CALLERS)
def test_both_callers_honour_a_retry_after_date(scripted: Callable[..., Scripted], caller: str) -> None:
    server = scripted((503, {"Retry-After": http_date(30, time.time())}))
    slept: list[float] = []
    CALLERS[caller](server.url, slept)
    [wait] = slept
    assert 28.0 <= wait <= 30.0  # the date has whole seconds, and a moment passed since it was written


def test_a_call_stops_when_its_time_budget_is_spent_by_the_same_clock_as_the_waits() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    class Down(Exception):
        retry_after = 4.0

    def operation() -> None:
        raise Down

    retrier = Retrier(RetryPolicy(total_seconds=10.0, retry_after_cap=30.0), sleep=sleep, clock=lambda: now[0])
    with pytest.raises(Down):
        retrier.call(operation, Down)
    assert slept == [4.0, 4.0, 2.0] and now[0] == 10.0  # the last wait is cut to what the budget has left
