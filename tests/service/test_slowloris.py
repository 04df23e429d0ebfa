"""Slow clients against the real `mlops-bot serve` on 127.0.0.1: headers and bodies trickled past their deadlines
are cut, one address cannot hold more than its share of connections, and a flood of held connections from many
addresses leaves real signed deliveries and /healthz answered within a second."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers.event_projects import write_project
from tests.helpers.serve import ONE_BODY_BYTE, PARTIAL_HEADERS, Served, slow_client, wait_closed
from tests.helpers.webhooks import SECRETS_ENV, github_fixture, github_signed, mlflow_request

# More than the 2,048 connections the receiver used to be capped at (`limit_concurrency`, after which every
# request was answered 503), each address under the per-client limit (64): the deadlines and the capacity do
# the work, not the per-client limit. First the attack, headers and one byte of the body; then
# connections that stop mid-headers.
WITH_A_BODY_BYTE, MID_HEADERS = 1100, 1000
FLOOD = WITH_A_BODY_BYTE + MID_HEADERS
ADDRESSES = [f"127.0.0.{n}" for n in range(2, 37)]


@pytest.fixture
def held() -> Iterator[list[socket.socket]]:
    socks: list[socket.socket] = []
    yield socks
    for sock in socks:
        sock.close()


def timed(call: Any) -> tuple[httpx.Response, float]:
    started = time.perf_counter()
    answer = call()
    return answer, time.perf_counter() - started


def deliver(served: Served, n: int) -> tuple[httpx.Response, float]:
    """A real signed delivery on a connection of its own, as GitHub sends one."""
    body = github_fixture("push-payload.json").replace(b'"pushed_at": 1557933657', b'"pushed_at": %d' % (n + 1))
    body, headers = github_signed("push", body)
    return timed(lambda: httpx.post(served.url + "/webhooks/github", content=body, headers=headers, timeout=5))


@pytest.mark.slow
def test_a_flood_of_held_connections_leaves_deliveries_and_healthz_answered_within_a_second(
        tmp_path: Path, serve: Any, held: list[socket.socket]) -> None:
    config = write_project(tmp_path / "p")
    served = serve(config.root, extra=("--header-timeout", "2", "--body-timeout", "2"))
    served.client.close()  # its idle keep-alive connection would be cut too: count only the flood's
    served.client = httpx.Client(timeout=10)
    held.extend(slow_client(served.port, ADDRESSES[n % len(ADDRESSES)], ONE_BODY_BYTE) for n in range(WITH_A_BODY_BYTE))
    time.sleep(0.2)  # read by the server before the next wave: these are requests in progress, waiting for a body
    held.extend(slow_client(served.port, ADDRESSES[n % len(ADDRESSES)], PARTIAL_HEADERS) for n in range(MID_HEADERS))
    latencies, during = [], []
    for n in range(10):  # while the flood is held
        answer, seconds = deliver(served, n)
        assert answer.status_code == 202, answer.text
        latencies.append(seconds)
        body, headers = mlflow_request({"name": "demo", "version": "1", "key": "note", "value": str(n)},
                                       "model_version_tag", "set")
        answer, seconds = timed(lambda b=body, h=headers: httpx.post(served.url + "/webhooks/mlflow", content=b,
                                                                     headers=h, timeout=5))
        assert answer.status_code == 202, answer.text
        latencies.append(seconds)
        answer, seconds = timed(lambda: httpx.get(served.url + "/healthz", timeout=5))
        assert answer.status_code == 200
        latencies.append(seconds)
        during.append(answer.json()["connections"]["open"])
    assert max(latencies) < 1.0, latencies
    assert min(during) >= 1000  # the server was full of the flood's connections all along
    still_open, _ = wait_closed(held, timeout=2 + 1 + 5)  # every held connection is cut by its deadline at the latest
    assert still_open == []
    health = served.health()
    dropped, rejected = health["connections"]["dropped"], health["rejected"]
    assert dropped.get("evicted", 0) > 0 and dropped.get("header_timeout", 0) > 0 and rejected["body_timeout"] > 0
    closed = dropped.get("evicted", 0) + dropped.get("header_timeout", 0) + dropped.get("body_timeout", 0)
    assert closed + rejected["body_timeout"] == FLOOD, health
    assert health["accepted"] == 20 and "per_client" not in dropped
    assert "Exception in ASGI application" not in served.log()


def test_headers_trickled_past_their_deadline_are_cut(tmp_path: Path, serve: Any,
                                                       held: list[socket.socket]) -> None:
    served = serve(write_project(tmp_path / "p").root, extra=("--header-timeout", "0.5"))
    sock = slow_client(served.port, "127.0.0.2")
    held.append(sock)
    started = time.monotonic()
    while time.monotonic() - started < 0.8:  # a byte every 0.1 s: never idle, never done
        try:
            sock.sendall(b"x")
        except OSError:
            break
        time.sleep(0.1)
    still_open, answers = wait_closed([sock], timeout=3)
    cut_after = time.monotonic() - started
    assert still_open == [] and answers[sock].startswith(b"HTTP/1.1 408 ")
    assert 0.5 <= cut_after < 3.5
    assert served.health()["connections"]["dropped"]["header_timeout"] == 1
    assert "dropped a connection from 127.0.0.2" in served.log()


def test_a_body_trickled_past_its_deadline_is_refused_408(tmp_path: Path, serve: Any,
                                                          held: list[socket.socket]) -> None:
    served = serve(write_project(tmp_path / "p").root, extra=("--body-timeout", "0.5"))
    body, headers = github_signed("push", github_fixture("push-payload.json"))
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    sock = slow_client(served.port, "127.0.0.2", f"POST /webhooks/github HTTP/1.1\r\nHost: 127.0.0.1\r\n{head}"
                                                 f"Content-Length: {len(body)}\r\n\r\n".encode())
    held.append(sock)
    started = time.monotonic()
    for offset in range(8):  # the signed body, a byte every 0.1 s
        try:
            sock.sendall(body[offset:offset + 1])
        except OSError:
            break
        time.sleep(0.1)
    still_open, answers = wait_closed([sock], timeout=3)
    assert still_open == [] and answers[sock].startswith(b"HTTP/1.1 408 ") and b"body_timeout" in answers[sock]
    assert 0.5 <= time.monotonic() - started < 3.5
    health = served.health()
    assert health["rejected"] == {"body_timeout": 1} and health["spool"]["pending"] + health["accepted"] == 0
    assert f"refused github delivery {headers['X-GitHub-Delivery']} from 127.0.0.2" in served.log()


def test_one_address_holds_at_most_its_share_of_connections(tmp_path: Path, serve: Any,
                                                            held: list[socket.socket]) -> None:
    served = serve(write_project(tmp_path / "p").root)
    held.extend(slow_client(served.port, "127.0.0.7") for _ in range(64))  # the default limit
    refused = slow_client(served.port, "127.0.0.7", b"")
    held.append(refused)
    still_open, answers = wait_closed([refused], timeout=3)
    assert still_open == [] and answers[refused].startswith(b"HTTP/1.1 429 ")
    assert wait_closed(held[:64], timeout=0.3)[0] == held[:64]  # the 64 are still held
    other = httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.8"), timeout=5)
    assert other.get(served.url + "/healthz").status_code == 200  # another address is served
    other.close()
    held[0].close()  # one of the 64 goes: the address may open one again
    time.sleep(0.2)
    again = slow_client(served.port, "127.0.0.7", b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    held.append(again)
    assert again.recv(65536).startswith(b"HTTP/1.1 200 ")
    assert served.health()["connections"]["dropped"] == {"per_client": 1}  # nothing else was cut


@pytest.mark.parametrize("option", [("--header-timeout", "0"), ("--body-timeout", "nan"), ("--max-per-client", "-1"),
                                    ("--max-connections", "0")])
def test_limits_out_of_range_are_a_usage_error(tmp_path: Path, option: tuple[str, str]) -> None:
    root = write_project(tmp_path / "p").root
    done = subprocess.run([sys.executable, "-m", "mlops_bot", "-C", str(root), "serve", *option], capture_output=True,
                          text=True, timeout=60, env={**os.environ, **SECRETS_ENV})
    assert done.returncode == 2 and option[0] in done.stderr and "unrecognized" not in done.stderr
