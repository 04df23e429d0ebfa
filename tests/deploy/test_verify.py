"""Verification before traffic (deploy/verify.py): the rows read from CSV and Parquet, the recorded predictions,
the request bodies, and the smoke test's agreement, latency and errors against a scoring endpoint on 127.0.0.1
that speaks MLflow's protocol (the real `mlflow models serve` is in test_mlflow_serve.py)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from mlops_bot.config.model import Verify
from mlops_bot.deploy.verify import (
    Evidence,
    compare,
    expected,
    payload,
    post_json,
    read_rows,
    smoke_test,
    tensor_signature,
)
from mlops_bot.errors import DataError

ROWS = "row_id,a,b,label\n0,1.5,2,0\n1,3,4.25,1\n2,5,6,1\n"


class Endpoint:
    """/invocations answers `answer(rows)` for the `inputs` rows it got, after `delay` seconds, or `status`."""

    def __init__(self, answer: Callable[[list[list[Any]]], list[Any]], delay: float = 0.0, status: int = 200) -> None:
        self.answer, self.delay, self.status, self.bodies = answer, delay, status, []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                endpoint.bodies.append(body)
                time.sleep(endpoint.delay)
                data = json.dumps({"predictions": endpoint.answer(body["inputs"])} if endpoint.status == 200
                                  else {"error_code": "BAD_REQUEST", "message": "shape mismatch"}).encode()
                self.send_response(endpoint.status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def endpoint() -> Iterator[Callable[..., Endpoint]]:
    made: list[Endpoint] = []

    def make(*args: Any, **kwargs: Any) -> Endpoint:
        made.append(Endpoint(*args, **kwargs))
        return made[-1]

    yield make
    for one in made:
        one.server.shutdown()
        one.server.server_close()


def table(tmp_path: Path, count: int) -> tuple[Any, dict[str, str]]:
    """Rows 0..count-1 with one feature equal to the row id, and recorded predictions `row_id % 3`."""
    path = tmp_path / "rows.csv"
    path.write_text("row_id,x,label\n" + "".join(f"{i},{i},{i % 3}\n" for i in range(count)))
    return read_rows(path, Verify(rows="rows.csv", drop=("label",))), {str(i): str(i % 3) for i in range(count)}


def test_csv_rows_without_the_id_and_dropped_columns(tmp_path: Path) -> None:
    (tmp_path / "rows.csv").write_text(ROWS)
    rows = read_rows(tmp_path / "rows.csv", Verify(rows="rows.csv", drop=("label",)))
    assert rows.ids == ["0", "1", "2"] and rows.columns == ["a", "b"]
    assert rows.data == [[1.5, 2], [3, 4.25], [5, 6]]


def test_parquet_rows_read_as_the_csv(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"id": [7, 8], "a": [1.5, 3.0], "label": [0, 1]}), tmp_path / "rows.parquet")
    rows = read_rows(tmp_path / "rows.parquet", Verify(rows="rows.parquet", id_column="id", drop=("label",)))
    assert (rows.ids, rows.columns, rows.data) == (["7", "8"], ["a"], [[1.5], [3.0]])


def test_rows_without_their_id_column_or_file(tmp_path: Path) -> None:
    (tmp_path / "rows.csv").write_text(ROWS)
    with pytest.raises(DataError, match=r"rows.csv: no column 'key' \(verify.id_column\); it has: row_id, a, b"):
        read_rows(tmp_path / "rows.csv", Verify(rows="rows.csv", id_column="key"))
    with pytest.raises(DataError, match=r"gone\.csv: verify\.rows names no file"):
        read_rows(tmp_path / "gone.csv", Verify(rows="gone.csv"))


def test_recorded_predictions_by_row_id(tmp_path: Path) -> None:
    (tmp_path / "p.csv").write_text("row_id,y_true,y_pred\n01,1,1\n2,0,1.0\n")
    assert expected(tmp_path / "p.csv") == {"1": "1", "2": "1.0"}
    (tmp_path / "s.csv").write_text("row_id,y_true,y_score\n1,1,0.9\n")
    with pytest.raises(DataError, match=r"s\.csv: no y_pred column"):
        expected(tmp_path / "s.csv")


def test_request_bodies_for_tensor_and_column_signatures(tmp_path: Path) -> None:
    assert json.loads(payload(["a", "b"], [[1, 2]], tensor=True)) == {"inputs": [[1, 2]]}
    assert json.loads(payload(["a", "b"], [[1, 2]], tensor=False)) == \
        {"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2]]}}
    import mlflow.sklearn
    import numpy as np
    import pandas as pd
    from mlflow.models import infer_signature
    from sklearn.dummy import DummyClassifier

    x, y = np.array([[0.0, 1.0], [1.0, 0.0]]), np.array([0, 1])
    model = DummyClassifier().fit(x, y)
    mlflow.sklearn.save_model(model, str(tmp_path / "tensor"), signature=infer_signature(x, y))
    frame = pd.DataFrame(x, columns=["a", "b"])
    mlflow.sklearn.save_model(model, str(tmp_path / "columns"), signature=infer_signature(frame, y))
    assert tensor_signature(tmp_path / "tensor") is True
    assert tensor_signature(tmp_path / "columns") is False
    assert tensor_signature(tmp_path / "nothing-here") is False


def test_agreement_in_batches_up_to_the_sample(tmp_path: Path, endpoint: Callable[..., Endpoint]) -> None:
    rows, recorded = table(tmp_path, 130)
    server = endpoint(lambda inputs: [int(r[0]) % 3 if int(r[0]) % 10 else 9 for r in inputs])  # every 10th wrong
    evidence = smoke_test(server.url, rows, recorded, Verify(sample=120, agreement=0.9), tensor=True)
    assert [len(body["inputs"]) for body in server.bodies] == [50, 50, 20]
    assert (evidence.rows, evidence.agreed, evidence.passed) == (120, 108, True)
    strict = smoke_test(server.url, rows, recorded, Verify(sample=120, agreement=0.95), tensor=True)
    assert strict.passed is False and json.loads(strict.as_tags()["verify"])["agreement"] == 0.9


def test_rows_without_a_recorded_prediction_are_not_sent(tmp_path: Path, endpoint: Callable[..., Endpoint]) -> None:
    rows, recorded = table(tmp_path, 10)
    server = endpoint(lambda inputs: [int(r[0]) % 3 for r in inputs])
    evidence = smoke_test(server.url, rows, {k: v for k, v in recorded.items() if int(k) < 4}, Verify(), tensor=True)
    assert evidence.rows == 4 and evidence.agreement == 1.0
    with pytest.raises(DataError, match="none of its row ids has a prediction recorded"):
        smoke_test(server.url, rows, {"99": "1"}, Verify(), tensor=True)


def test_a_slow_endpoint_fails_the_latency_bound(tmp_path: Path, endpoint: Callable[..., Endpoint]) -> None:
    rows, recorded = table(tmp_path, 3)
    server = endpoint(lambda inputs: [int(r[0]) % 3 for r in inputs], delay=0.25)
    evidence = smoke_test(server.url, rows, recorded, Verify(p95_ms=100), tensor=True)
    assert evidence.agreement == 1.0 and evidence.p95_ms >= 250 and evidence.passed is False
    assert "(bound 100 ms)" in evidence.line()


def test_an_error_or_a_short_answer_names_the_endpoint(tmp_path: Path, endpoint: Callable[..., Endpoint]) -> None:
    rows, recorded = table(tmp_path, 3)
    failing = endpoint(lambda inputs: [], status=400)
    with pytest.raises(DataError, match=rf"POST {failing.url}/invocations answered HTTP 400: .*shape mismatch"):
        smoke_test(failing.url, rows, recorded, Verify(), tensor=True)
    short = endpoint(lambda inputs: [0])
    with pytest.raises(DataError, match=rf"POST {short.url}/invocations answered .*, not 3 predictions"):
        smoke_test(short.url, rows, recorded, Verify(), tensor=True)


def test_numbers_compare_as_numbers() -> None:
    from mlops_bot.deploy.verify import _same

    assert _same(1, "1.0") and _same(2.0, "2") and _same("cat", "cat") and _same(0.30000000001, "0.3")
    assert not _same(1, "2") and not _same("cat", "dog") and not _same(0.31, "0.3")
    assert Evidence(0, 0, 0.0, 0.0, 0.5, None).passed is False  # nothing compared is no evidence


def test_any_scorer_shares_the_comparison_and_the_p95(tmp_path: Path) -> None:
    rows, recorded = table(tmp_path, 7)
    batches: list[tuple[list[str], int]] = []

    def scorer(columns: Any, batch: Any) -> list[Any]:  # as azureml_score's Scorer: one batch in, predictions out
        batches.append((list(columns), len(batch)))
        time.sleep(0.05)
        return [str(int(row[0]) % 3) if int(row[0]) else "cat" for row in batch]

    evidence = compare(rows, recorded, Verify(agreement=0.8, p95_ms=1000), scorer)
    assert batches == [(["x"], 7)] and (evidence.rows, evidence.agreed, evidence.passed) == (7, 6, True)
    assert 50 <= evidence.p95_ms < 1000


def test_a_secret_echoed_by_the_server_is_hidden(endpoint: Callable[..., Endpoint]) -> None:
    failing = endpoint(lambda inputs: [], status=400)
    secret = "shape"  # the stand-in's error says "shape mismatch": as if it echoed a key
    with pytest.raises(DataError) as caught:
        post_json(failing.url + "/invocations", b'{"inputs": [[1]]}', {"Authorization": f"Bearer {secret}"}, 1,
                  secret=secret)
    assert "*** mismatch" in str(caught.value) and secret not in str(caught.value)
