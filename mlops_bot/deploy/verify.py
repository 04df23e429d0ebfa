"""Verification before traffic: the new deployment's answers on the evaluation rows, compared with the
predictions the evaluation step recorded for that version.

The rows come from `verify.rows` (CSV or Parquet, relative to ml.yaml): an id column, the features, and columns
that are not features (`drop`, e.g. the label). The expected predictions are the version's own: the predictions
file its run holds (`outs/<path>`, as the pipeline uploaded it), matched by row id. At most `sample` rows are
sent, `BATCH` per request, through a `Scorer` (one batch in, its predictions out): `smoke_test`'s speaks MLflow's
scoring protocol, `{"inputs": [[...]]}` for a model whose signature takes a tensor, `{"dataframe_split": {...}}`
otherwise; deploy/azureml_score.py's speaks an Azure ML online endpoint's. Agreement is the share of rows whose
prediction equals the recorded one (labels in one spelling, numbers within 1e-6); p95 is over the requests'
latencies. Every target that verifies shares `compare`, `evaluation` and `post_json`.
"""

from __future__ import annotations

import csv
import json
import math
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config.model import DeployTarget, Verify
from ..errors import DataError, NotFound, UsageError
from ..metrics.cells import label, number
from ..metrics.predictions import read_predictions
from .base import DeployRefused, DeploySession

BATCH = 50
REQUEST_TIMEOUT_S = 60.0
OUTS_ARTIFACT = "outs"  # where the pipeline uploads the steps' outs, the predictions file among them
Scorer = Callable[[Sequence[str], Sequence[Sequence[Any]]], list[Any]]  # (columns, rows) -> one prediction a row


@dataclass(frozen=True)
class Evidence:
    rows: int
    agreed: int
    p95_ms: float
    seconds: float  # the whole smoke test
    required: float
    p95_bound: float | None

    @property
    def agreement(self) -> float:
        return self.agreed / self.rows if self.rows else 0.0

    @property
    def passed(self) -> bool:
        fast = self.p95_bound is None or self.p95_ms <= self.p95_bound
        return self.rows > 0 and self.agreement >= self.required and fast

    def as_tags(self) -> dict[str, str]:
        return {"verify": json.dumps({"passed": self.passed, "rows": self.rows, "agreement": round(self.agreement, 6),
                                      "required": self.required, "p95_ms": round(self.p95_ms, 3),
                                      "p95_bound_ms": self.p95_bound, "seconds": round(self.seconds, 3)},
                                     sort_keys=True)}

    def line(self) -> str:
        bound = f" (bound {self.p95_bound:g} ms)" if self.p95_bound is not None else ""
        return (f"agreement {self.agreement:.4f} on {self.rows} rows (required {self.required:g}), "
                f"p95 {self.p95_ms:.1f} ms per request{bound}, {self.seconds:.2f}s")


class VerificationFailed(DeployRefused):
    def __init__(self, version: str, evidence: Evidence) -> None:
        super().__init__(f"v{version} failed verification before traffic: {evidence.line()}; traffic stays on the "
                         "previous version", evidence.as_tags())


@dataclass(frozen=True)
class Rows:
    path: Path
    ids: list[str]
    columns: list[str]  # the features, in file order
    data: list[list[Any]]


def read_rows(path: Path, verify: Verify) -> Rows:
    """The evaluation inputs: ids and feature rows (numbers as numbers)."""
    if not path.is_file():
        raise DataError(f"{path}: verify.rows names no file; write it (e.g. with the pipeline) or fix the path.")
    header, records = _parquet(path) if path.suffix in (".parquet", ".pq") else _csv(path)
    if verify.id_column not in header:
        raise DataError(f"{path}: no column '{verify.id_column}' (verify.id_column); it has: {', '.join(header[:8])}")
    keep = [i for i, name in enumerate(header) if name != verify.id_column and name not in verify.drop]
    at = header.index(verify.id_column)
    ids = [str(record[at]) for record in records]
    return Rows(path, ids, [header[i] for i in keep], [[_value(record[i]) for i in keep] for record in records])


def _csv(path: Path) -> tuple[list[str], list[list[Any]]]:
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader, [])
        return header, [row for row in reader if row]


def _parquet(path: Path) -> tuple[list[str], list[list[Any]]]:
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    columns = [table.column(i).to_pylist() for i in range(table.num_columns)]
    return list(table.column_names), [list(row) for row in zip(*columns, strict=True)]


def _value(cell: Any) -> Any:
    if isinstance(cell, str):
        value = number(cell.strip())
        return cell if value is None else int(value) if value.is_integer() and "." not in cell else value
    return cell


def expected(predictions_file: Path) -> dict[str, str]:
    """Row id -> the recorded y_pred."""
    recorded = read_predictions(predictions_file)
    if "y_pred" not in recorded.columns:
        raise DataError(f"{predictions_file}: no y_pred column, so there is nothing to verify the server against.")
    return {label(i): cell for i, cell in zip(recorded.ids, recorded.columns["y_pred"], strict=True)}


def payload(columns: Sequence[str], rows: Sequence[Sequence[Any]], tensor: bool) -> bytes:
    if tensor:
        return json.dumps({"inputs": [list(row) for row in rows]}).encode()
    return json.dumps({"dataframe_split": {"columns": list(columns), "data": [list(row) for row in rows]}}).encode()


def smoke_test(url: str, rows: Rows, recorded: Mapping[str, str], verify: Verify, tensor: bool) -> Evidence:
    """The rows sent to an MLflow scoring server at `url` (`mlflow models serve`), compared."""
    def score(columns: Sequence[str], batch: Sequence[Sequence[Any]]) -> list[Any]:
        return post_json(url + "/invocations", payload(columns, batch, tensor), {}, len(batch))

    return compare(rows, recorded, verify, score)


def compare(rows: Rows, recorded: Mapping[str, str], verify: Verify, score: Scorer) -> Evidence:
    """Sends the rows that have a recorded prediction (at most verify.sample), `BATCH` per call of `score`, and
    compares the answers; the latency of each call counts towards p95."""
    chosen = [i for i, row_id in enumerate(rows.ids) if label(row_id) in recorded][:verify.sample]
    if not chosen:
        raise DataError(f"{rows.path}: none of its row ids has a prediction recorded for this version; "
                        "verify.rows must hold the evaluation step's rows.")
    started, latencies, agreed = time.monotonic(), [], 0
    for first in range(0, len(chosen), BATCH):
        batch = chosen[first:first + BATCH]
        begin = time.perf_counter()
        answers = score(rows.columns, [rows.data[i] for i in batch])
        latencies.append((time.perf_counter() - begin) * 1000)
        agreed += sum(_same(answer, recorded[label(rows.ids[i])]) for answer, i in zip(answers, batch, strict=True))
    return Evidence(len(chosen), agreed, _p95(latencies), time.monotonic() - started, verify.agreement, verify.p95_ms)


def post_json(url: str, body: bytes, headers: Mapping[str, str], count: int, secret: str = "") -> list[Any]:
    """POSTs one batch; its `count` predictions (a JSON list, or MLflow 2's {"predictions": [...]}). `secret` (a
    key in `headers`) never appears in an error, should the server echo it."""
    request = urllib.request.Request(url, body, {"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_S) as answer:
            data = json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        text = exc.read(300).decode("utf-8", "replace")
        raise DataError(_hidden(f"POST {url} answered HTTP {exc.code}: {text}", secret)) from None
    except (OSError, ValueError) as exc:
        raise DataError(_hidden(f"POST {url} failed: {exc}", secret)) from None
    found = data.get("predictions") if isinstance(data, dict) else data
    if not isinstance(found, list) or len(found) != count:
        raise DataError(_hidden(f"POST {url} answered {str(data)[:200]}, not {count} predictions.", secret))
    return found


def _hidden(text: str, secret: str) -> str:
    return text.replace(secret, "***") if secret else text


def evaluation(target: DeployTarget, session: DeploySession, run_id: str,
               workdir: Path) -> tuple[dict[str, str] | None, Rows | None]:
    """The predictions the version's evaluation recorded (its run's `outs/<verify.predictions>`, downloaded into
    `workdir`) and the rows to send; (None, None) with a warning when the target has no verify.rows."""
    verify = target.verify
    if not verify.rows:
        session.echo(f"mlops-bot: warning: deploy target '{target.name}' has no verify.rows; the new version takes "
                     "traffic without verification")
        return None, None
    if not verify.predictions:
        raise UsageError(f"deploy target '{target.name}': verify needs the evaluation step's predictions file; "
                         "declare predictions: on that step or verify.predictions.")
    if session.registry is None:
        raise UsageError(f"deploy target '{target.name}' needs the registry to read the version's predictions.")
    if not run_id:
        raise DataError(f"deploy target '{target.name}': the version has no tracking run, so no recorded "
                        "predictions to verify it against; register it from a pipeline run, or drop verify.rows.")
    artifact = f"{OUTS_ARTIFACT}/{verify.predictions}"
    try:
        path = session.registry.download_artifacts(run_id, artifact, workdir / "expected")
    except NotFound:
        path = workdir / "missing"
    if not path.is_file():
        raise DataError(f"run {run_id} holds no '{artifact}': the version's evaluation predictions are needed to "
                        "verify it; run the pipeline that declares them, or drop verify.rows.")
    return expected(path), read_rows(session.root / verify.rows, verify)


def _same(answer: Any, recorded: str) -> bool:
    cell = answer if isinstance(answer, str) else json.dumps(answer)
    if label(cell) == label(recorded):
        return True
    a, b = number(cell), number(recorded)
    return a is not None and b is not None and math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)


def _p95(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)] if ordered else 0.0


def tensor_signature(model_dir: Path) -> bool:
    """The MLmodel's signature takes a tensor (a numpy array), not named columns."""
    import yaml

    try:
        meta = yaml.safe_load((model_dir / "MLmodel").read_text(encoding="utf-8")) or {}
        inputs = json.loads((meta.get("signature") or {}).get("inputs") or "[]")
    except (OSError, ValueError, yaml.YAMLError, AttributeError):
        return False
    return bool(inputs) and all(isinstance(spec, dict) and spec.get("type") == "tensor" for spec in inputs)
