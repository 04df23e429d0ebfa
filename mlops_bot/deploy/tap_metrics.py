"""What the tap of an `mlflow_serve` version measures: the Prometheus metrics (its own registry), the predictions
read from MLflow's scoring answers, the shadow's share and the row-by-row comparison with a shadow's answers.

Every metric carries `target` and `version`; a shadow's rows carry the shadow's version and `baseline` (the
version that answered the user). Predicted values become a label only for the first VALUE_CAP distinct values
of the process, then "other", so a regression model cannot grow the series without bound. prometheus_client is
imported when the metrics are built (the tap only). `ShadowFile` reads the shadow file the bot writes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..metrics.cells import label, number

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

VALUE_CAP = 20
OTHER = "other"
INVOCATIONS = "/invocations"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
OUTCOMES = ("agree", "disagree", "error", "skipped")


def predictions(body: bytes) -> list[Any] | None:
    """The predictions of a scoring answer: `{"predictions": [...]}` or a bare list; None when it is neither."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    found = data.get("predictions") if isinstance(data, dict) else data
    return found if isinstance(found, list) else None


def unwrap(row: Any) -> Any:
    return row[0] if isinstance(row, list) and len(row) == 1 else row


def row_value(row: Any) -> Any:
    """A row's prediction: a scalar as is, a one-element list unwrapped; None for a dict or a longer list."""
    value = unwrap(row)
    return None if isinstance(value, (dict, list)) else value


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def cell(value: Any) -> str:
    """A prediction as the text a predictions file would hold (strings as they are, the rest as JSON)."""
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def same(a: Any, b: Any) -> bool:
    """Two predictions agree: one label spelling, or numbers within 1e-6 (as deploy/verify compares)."""
    left, right = cell(unwrap(a)), cell(unwrap(b))
    if label(left) == label(right):
        return True
    x, y = number(left), number(right)
    return x is not None and y is not None and math.isclose(x, y, rel_tol=1e-6, abs_tol=1e-9)


def compare(user: Sequence[Any], shadow: Sequence[Any] | None) -> tuple[int, int] | None:
    """(agreeing rows, disagreeing rows); None when the shadow's answer has no predictions or not one per row."""
    if shadow is None or len(shadow) != len(user):
        return None
    agreed = sum(same(a, b) for a, b in zip(user, shadow, strict=True))
    return agreed, len(user) - agreed


class ShareGate:
    """Which requests a shadow gets: share/100 accumulates per request and one goes out each time it reaches 1,
    so 20% of 100 requests is exactly 20 (exact fractions: no drift over millions of requests)."""

    def __init__(self, share: float) -> None:
        self.step = min(Fraction(1), max(Fraction(0), Fraction(str(share)) / 100))
        self.total = Fraction(0)

    def take(self) -> bool:
        self.total += self.step
        if self.total >= 1:
            self.total -= 1
            return True
        return False


class ValueCap:
    """The label of a predicted value: its spelling for the first `cap` distinct values, then "other"."""

    def __init__(self, cap: int = VALUE_CAP) -> None:
        self.cap, self.seen = cap, set[str]()

    def name(self, value: Any) -> str:
        text = label(cell(value))
        if text in self.seen:
            return text
        if len(self.seen) < self.cap:
            self.seen.add(text)
            return text
        return OTHER


@dataclass(frozen=True)
class Shadow:
    """The shadow file's content: where the shadow version answers, its version and its share in percent."""

    url: str
    version: str
    share: float


def read_shadow(text: str) -> Shadow:
    """Parses the shadow file; ValueError names the key that is wrong."""
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    url, version, share = data.get("url"), data.get("version"), data.get("share")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ValueError(f"'url' is {url!r}, not an http(s) URL")
    if not isinstance(version, (str, int)) or isinstance(version, bool) or not str(version):
        raise ValueError(f"'version' is {version!r}, not a version")
    if not isinstance(share, (int, float)) or not is_number(share) or not 0 <= share <= 100:
        raise ValueError(f"'share' is {share!r}, not a percentage from 0 to 100")
    return Shadow(url.rstrip("/"), str(version), float(share))


class ShadowFile:
    """The shadow file, read again only when it changes (stat per request); absent or unreadable: no shadow."""

    def __init__(self, path: Path | None, warn: Callable[[str], None]) -> None:
        self.path, self.warn = path, warn
        self.stamp: tuple[int, int, int] | None = None
        self.shadow: Shadow | None = None
        self.gate = ShareGate(0)

    def current(self) -> tuple[Shadow, ShareGate] | None:
        if self.path is None:
            return None
        try:
            stat = self.path.stat()
        except OSError:
            self.stamp, self.shadow = None, None
            return None
        stamp = (stat.st_mtime_ns, stat.st_ino, stat.st_size)
        if stamp != self.stamp:
            self.stamp = stamp
            self._load()
        return (self.shadow, self.gate) if self.shadow else None

    def _load(self) -> None:
        assert self.path is not None
        try:
            shadow: Shadow | None = read_shadow(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            self.warn(f"{self.path}: {exc}; no shadow traffic until the file is rewritten.")
            shadow = None
        if shadow != self.shadow:
            self.gate = ShareGate(shadow.share if shadow else 0)
        self.shadow = shadow


class TapMetrics:
    """The tap's metrics in a registry of its own (not prometheus_client's global one)."""

    def __init__(self, target: str, version: str, cap: int = VALUE_CAP) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram, Summary

        self.target, self.version, self.values = target, version, ValueCap(cap)
        self.registry: CollectorRegistry = CollectorRegistry(auto_describe=True)
        both = ("target", "version")
        self.requests = Counter("mlops_bot_requests", "Requests answered by this version (health probes aside).",
                                (*both, "path", "code"), registry=self.registry)
        self.latency = Histogram("mlops_bot_request_duration_seconds", "Latency of POST /invocations.", both,
                                 buckets=LATENCY_BUCKETS, registry=self.registry)
        self.rows = Counter("mlops_bot_prediction_rows", "Rows predicted.", both, registry=self.registry)
        self.counts = Counter("mlops_bot_predictions", "Rows predicted, per predicted value (at most "
                              f"{cap} values, then value=\"{OTHER}\").", (*both, "value"), registry=self.registry)
        self.numbers = Summary("mlops_bot_prediction", "Numeric predictions (mean = rate(_sum) / rate(_count)).",
                               both, registry=self.registry)
        self.shadow = Counter("mlops_bot_shadow_rows", "Shadow rows compared with this version's answer, by outcome "
                              "(version: the shadow; baseline: this version).", (*both, "baseline", "outcome"),
                              registry=self.registry)

    def request(self, path: str, code: int) -> None:
        shown = INVOCATIONS if path == INVOCATIONS else OTHER
        self.requests.labels(self.target, self.version, shown, str(code)).inc()

    def timed(self, seconds: float) -> None:
        """The latency of one POST /invocations the model server answered (any status)."""
        self.latency.labels(self.target, self.version).observe(seconds)

    def answered(self, rows: Sequence[Any]) -> None:
        """The rows of one successful POST /invocations and their values."""
        self.rows.labels(self.target, self.version).inc(len(rows))
        for row in rows:
            value = row_value(row)
            if value is None:
                continue
            self.counts.labels(self.target, self.version, self.values.name(value)).inc()
            if is_number(value):
                self.numbers.labels(self.target, self.version).observe(float(value))

    def shadowed(self, shadow_version: str, outcome: str, rows: int) -> None:
        if rows:
            self.shadow.labels(self.target, shadow_version, self.version, outcome).inc(rows)

    def exposition(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST
