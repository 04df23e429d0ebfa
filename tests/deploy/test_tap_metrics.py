"""The tap's pure parts, without servers: reading MLflow's scoring answers, comparing a shadow's rows, the exact
share, the cap on predicted values, the shadow file, and the metrics they count; the ASGI app in front of a model
server that does not answer."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from pathlib import Path

import httpx
import pytest

from mlops_bot.deploy.serving import free_port
from mlops_bot.deploy.tap import VERSION_HEADER, Tap, create_app
from mlops_bot.deploy.tap_metrics import (
    OTHER,
    ShadowFile,
    ShareGate,
    TapMetrics,
    ValueCap,
    compare,
    predictions,
    read_shadow,
    row_value,
    same,
)
from tests.helpers.taps import parse, value

pytest.importorskip("prometheus_client")


def test_predictions_are_read_from_the_scoring_answer_or_a_bare_list() -> None:
    assert predictions(b'{"predictions": [1, 2]}') == [1, 2]
    assert predictions(b'[["a"], ["b"]]') == [["a"], ["b"]]
    assert predictions(b'{"predictions": {"a": 1}}') is None
    assert predictions(b'{"outputs": [1]}') is None
    assert predictions(b"not json") is None
    assert predictions(b"\xff\xfe") is None


def test_a_row_is_a_scalar_a_one_element_list_unwrapped_or_nothing_countable() -> None:
    assert [row_value(r) for r in (3, "cat", [2.5], [True], {"a": 1}, [1, 2], [[1]])] == \
        [3, "cat", 2.5, True, None, None, None]


def test_rows_agree_on_one_label_spelling_or_numbers_within_1e_6() -> None:
    assert same(1, "1") and same(1.0, 1) and same([2], 2) and same("cat", ["cat"])
    assert same(0.5, 0.5 + 1e-9) and not same(0.5, 0.5001)
    assert not same(1, 2) and not same("cat", "dog") and not same(True, 1)
    assert same({"a": 1, "b": 2}, {"b": 2, "a": 1}) and not same([1, 2], [2, 1])


def test_compare_counts_rows_and_refuses_a_different_row_count() -> None:
    assert compare([0, 1, 2, 2], [0, 1, 1, 2.0]) == (3, 1)
    assert compare([0, 1], [0]) is None
    assert compare([0, 1], None) is None


@pytest.mark.parametrize(("share", "requests", "sent"), [(20, 100, 20), (50, 10, 5), (33.3, 1000, 333),
                                                           (0, 50, 0), (100, 7, 7), (12.5, 8, 1), (150, 3, 3)])
def test_the_share_gate_sends_exactly_its_share(share: float, requests: int, sent: int) -> None:
    gate = ShareGate(share)
    taken = [gate.take() for _ in range(requests)]
    assert sum(taken) == sent
    if share == 50:
        assert taken == [False, True] * 5


def test_predicted_values_become_labels_up_to_the_cap_then_other() -> None:
    cap = ValueCap(3)
    assert [cap.name(v) for v in (1, 1.0, "a", 2, 3, "a", 4)] == ["1", "1", "a", "2", OTHER, "a", OTHER]


@pytest.mark.parametrize(("text", "problem"), [
    ("[]", "not a JSON object"), ('{"url": "ftp://x", "version": "1", "share": 5}', "'url'"),
    ('{"url": "http://x", "version": true, "share": 5}', "'version'"),
    ('{"url": "http://x", "version": "1", "share": 101}', "'share'"),
    ('{"url": "http://x", "version": "1", "share": "5"}', "'share'"), ("{", "Expecting")])
def test_a_bad_shadow_file_names_the_key(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        read_shadow(text)


def test_the_shadow_file_is_read_again_only_when_it_changes(tmp_path: Path) -> None:
    path, warnings = tmp_path / "shadow.json", list[str]()
    shadow = ShadowFile(path, warnings.append)
    assert shadow.current() is None
    path.write_text(json.dumps({"url": "http://127.0.0.1:9/", "version": 7, "share": 50}))
    first = shadow.current()
    assert first is not None and first[0].url == "http://127.0.0.1:9" and first[0].version == "7"
    assert [first[1].take(), first[1].take()] == [False, True]
    stamp = path.stat()
    path.write_text(json.dumps({"url": "http://127.0.0.1:9/", "version": 8, "share": 50}))
    os.utime(path, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))  # same mtime, same size, same inode: not read
    assert shadow.current() == first
    path.write_text("{broken")
    assert shadow.current() is None and str(path) in warnings[0] and "no shadow traffic" in warnings[0]
    path.unlink()
    assert shadow.current() is None


def test_the_metrics_count_rows_values_and_numbers_with_target_and_version() -> None:
    metrics = TapMetrics("t", "3", cap=2)
    metrics.request("/invocations", 200)
    metrics.request("/version", 404)
    metrics.timed(0.004)
    metrics.answered([0, [1], 2, "x", {"a": 1}, True])
    metrics.shadowed("4", "agree", 5)
    metrics.shadowed("4", "error", 0)
    body, content_type = metrics.exposition()
    assert content_type.startswith("text/plain")
    found = parse(body.decode())
    both = {"target": "t", "version": "3"}
    assert value(found, "mlops_bot_requests_total", path="/invocations", code="200", **both) == 1
    assert value(found, "mlops_bot_requests_total", path="other", code="404", **both) == 1
    assert value(found, "mlops_bot_prediction_rows_total", **both) == 6
    assert {dict(k[1])["value"]: v for k, v in found.items() if k[0] == "mlops_bot_predictions_total"} == \
        {"0": 1, "1": 1, OTHER: 3}
    assert value(found, "mlops_bot_prediction_count", **both) == 3  # 0, 1, 2: strings and bools are not numbers
    assert value(found, "mlops_bot_prediction_sum", **both) == 3
    assert value(found, "mlops_bot_request_duration_seconds_bucket", le="0.005", **both) == 1
    assert value(found, "mlops_bot_shadow_rows_total", target="t", version="4", baseline="3", outcome="agree") == 5
    assert value(found, "mlops_bot_shadow_rows_total", outcome="error") == 0


def test_the_app_answers_502_with_the_version_until_the_model_server_answers(tmp_path: Path) -> None:
    args = argparse.Namespace(target="t", version="5", shadow_file=None, log_file=tmp_path / "log")
    tap = Tap(args, f"http://127.0.0.1:{free_port()}")  # nothing listens there

    async def scenario() -> list[httpx.Response]:
        async with httpx.AsyncClient() as upstream, httpx.AsyncClient(
                transport=httpx.ASGITransport(app=create_app(tap)), base_url="http://tap") as client:
            tap.client = upstream  # what the app's lifespan does under uvicorn
            return [await client.get("/health"), await client.post(
                "/invocations", content=b'{"inputs": [[1]]}', headers={"content-type": "application/json"}),
                await client.get("/metrics")]

    health, scored, metrics = asyncio.run(scenario())
    assert health.status_code == 502 and health.headers[VERSION_HEADER] == "5"
    assert "did not answer" in health.json()["error"] and "\n" not in health.text
    assert scored.status_code == 502
    assert metrics.status_code == 200 and metrics.headers[VERSION_HEADER] == "5"
    assert 'mlops_bot_requests_total{code="502",path="/invocations",target="t",version="5"} 1.0' in metrics.text
    assert "/health" not in metrics.text and 'path="other"' not in metrics.text  # probes are not traffic


def test_the_shadow_never_delays_the_user_and_at_most_8_calls_are_in_flight(tmp_path: Path) -> None:
    """A stand-in model server answers the live version at once and holds the shadow's calls until released: the
    user's 10 answers come back meanwhile, 8 shadow calls wait, the 9th and 10th are skipped."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    shadow_file = tmp_path / "shadow.json"
    shadow_file.write_text(json.dumps({"url": "http://shadow", "version": "7", "share": 100}))
    args = argparse.Namespace(target="t", version="1", shadow_file=shadow_file, log_file=tmp_path / "log")
    tap = Tap(args, "http://live")

    async def scenario() -> tuple[list[httpx.Response], int]:
        release = asyncio.Event()

        async def invocations(request: Request) -> JSONResponse:
            if request.url.hostname == "shadow":
                await release.wait()
                return JSONResponse({"predictions": [0, 9]})
            return JSONResponse({"predictions": [0, 1]})

        model_server = Starlette(routes=[Route("/invocations", invocations, methods=["POST"])])
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=model_server)) as upstream, httpx.AsyncClient(
                transport=httpx.ASGITransport(app=create_app(tap)), base_url="http://tap") as client:
            tap.client = upstream
            answers = [await client.post("/invocations", content=b'{"inputs": [[1], [2]]}',
                                         headers={"content-type": "application/json"}) for _ in range(10)]
            in_flight = len(tap.tasks)
            release.set()
            await asyncio.gather(*tap.tasks)
        return answers, in_flight

    answers, in_flight = asyncio.run(scenario())
    assert [a.json() for a in answers] == [{"predictions": [0, 1]}] * 10
    assert in_flight == 8
    found = parse(tap.metrics.exposition()[0].decode())
    rows = {o: value(found, "mlops_bot_shadow_rows_total", version="7", baseline="1", outcome=o)
            for o in ("agree", "disagree", "error", "skipped")}
    assert rows == {"agree": 8, "disagree": 8, "error": 0, "skipped": 4}



def test_end_to_end_headers_and_the_query_pass_hop_by_hop_ones_do_not(tmp_path: Path) -> None:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    seen: list[Request] = []

    async def echo(request: Request) -> Response:
        seen.append(request)
        return Response(await request.body(), 201, {"X-Model": "a", "Keep-Alive": "timeout=5",
                                                    VERSION_HEADER: "forged", "content-type": "text/csv"})

    args = argparse.Namespace(target="t", version="2", shadow_file=None, log_file=tmp_path / "log")
    tap = Tap(args, "http://live")
    model_server = Starlette(routes=[Route("/{path:path}", echo, methods=["PUT"])])

    async def scenario() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=model_server)) as upstream, httpx.AsyncClient(
                transport=httpx.ASGITransport(app=create_app(tap)), base_url="http://tap") as client:
            tap.client = upstream
            return await client.put("/a/b%20c?x=1&y=%2F", content=b"row", headers={
                "X-Keep": "1", "X-Drop": "1", "Connection": "X-Drop", "Keep-Alive": "timeout=5",
                "content-type": "text/csv"})

    answer = asyncio.run(scenario())
    assert (answer.status_code, answer.content, answer.headers["content-type"]) == (201, b"row", "text/csv")
    assert answer.headers["x-model"] == "a" and "keep-alive" not in answer.headers
    assert answer.headers.get_list(VERSION_HEADER) == ["2"]
    request = seen[0]
    assert (request.scope["raw_path"], request.scope["query_string"]) == (b"/a/b%20c", b"x=1&y=%2F")
    assert request.headers["x-keep"] == "1" and request.headers["content-type"] == "text/csv"
    assert "x-drop" not in request.headers and "keep-alive" not in request.headers
