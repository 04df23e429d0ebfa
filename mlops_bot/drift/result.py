"""What a drift check found: per feature the tests, the findings, the verdict; its stable signature, the metrics
for a tracking run and the JSON for `--json`. Pure."""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from typing import Any

from .stats import Bins, TestResult

_METRIC_UNSAFE = re.compile(r"[^A-Za-z0-9_. -]")  # MLflow's allowed characters, less `/` (a feature is one level)
STRUCTURAL = ("missing_column", "new_category", "kind_change", "null_rate")


@dataclass(frozen=True)
class Finding:
    """Something the check found, told in plain words (`description`); `detail` is its stable part (the side a
    column is missing from, the new categories, the direction of a null-rate change), never a statistic."""

    kind: str  # missing_column | new_category | null_rate | kind_change | feature_drift
    feature: str
    description: str
    detail: str = ""


@dataclass(frozen=True)
class FeatureResult:
    name: str
    kind: str  # numeric | categorical | "numeric->categorical" (and back) when the column changed kind
    tests: tuple[TestResult, ...]
    reference_rows: int  # non-null values compared
    current_rows: int
    bins: Bins | None  # shares per bin or category: the data of the report's chart
    changed: bool = False  # the column holds numbers on one side and text on the other: drifted, nothing tested
    null_shares: tuple[float, float] = (0.0, 0.0)  # the share of empty values, reference and current (all rows)
    require_all: bool = True  # monitor.tests.require: every test must cross (significant and large), or any one

    @property
    def drifted(self) -> bool:
        crossed = [t.drifted for t in self.tests]
        return self.changed or (bool(crossed) and (all(crossed) if self.require_all else any(crossed)))


@dataclass(frozen=True)
class TableInfo:
    label: str
    files: tuple[str, ...]
    rows_read: int
    rows_kept: int
    sampled: bool

    @classmethod
    def of(cls, table: Any) -> TableInfo:
        return cls(table.label, tuple(table.files), table.rows_read, table.rows_kept, table.sampled)


@dataclass(frozen=True)
class DriftResult:
    reference: TableInfo
    current: TableInfo
    features: tuple[FeatureResult, ...]
    findings: tuple[Finding, ...]
    drifted: bool
    rule: str  # the dataset rule in words ("at least 1 feature drifts")
    not_compared: tuple[str, ...] = ()  # columns of the reference alone, monitor.features unset: no finding

    @property
    def drifted_features(self) -> tuple[FeatureResult, ...]:
        return tuple(f for f in self.features if f.drifted)

    def signature(self) -> str:
        """A digest of WHAT drifted (the tests that crossed, per feature, and the structural findings), not of
        by how much: the same drift on another batch has the same signature, so it is acted on once."""
        # the features that drifted, not every test that crossed: a test crossing alone, by chance, in a feature
        # that did not drift would change the signature from one batch to the next
        crossed = sorted(f.name for f in self.features if f.drifted and not f.changed)
        changed = sorted([f.name, f.kind] for f in self.features if f.changed)
        # a column the batch lacks stays part of what drifted, found or only noted, as it was when every one was a
        # finding: a batch that loses one more column is another drift, and earlier finding ids hold
        structural = sorted([[x.kind, x.feature, x.detail] for x in self.findings if x.kind in STRUCTURAL]
                            + [["missing_column", c, "current"] for c in self.not_compared])
        text = json.dumps({"crossed": crossed, "changed": changed, "findings": structural}, sort_keys=True)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]

    def metrics(self) -> dict[str, float]:
        """Metrics for a monitoring run: `drift.<feature>.<test>` (and `.p_value`), `drift.null_rate.<feature>`
        (the current share of empty values) and its change, the counts; keys in MLflow's allowed characters."""
        found: dict[str, float] = {
            "drift.drifted": float(self.drifted),
            "drift.features_compared": float(len(self.features)),
            "drift.features_drifted": float(len(self.drifted_features)),
            "drift.share_drifted": len(self.drifted_features) / len(self.features) if self.features else 0.0,
            "drift.findings": float(sum(f.kind != "feature_drift" for f in self.findings)),
        }
        names = _metric_names([f.name for f in self.features])
        for feature in self.features:
            key = names[feature.name]
            for test in feature.tests:
                found[f"drift.{key}.{test.name}"] = test.statistic
                if test.p_value is not None:
                    found[f"drift.{key}.{test.name}.p_value"] = test.p_value
            found[f"drift.{key}.drifted"] = float(feature.drifted)
            found[f"drift.null_rate.{key}"] = feature.null_shares[1]
            found[f"drift.null_rate_change.{key}"] = feature.null_shares[1] - feature.null_shares[0]
        return {k: v for k, v in found.items() if math.isfinite(v)}

    def as_dict(self) -> dict[str, Any]:
        return {
            "drifted": self.drifted, "rule": self.rule, "signature": self.signature(),
            "reference": _table(self.reference), "current": _table(self.current),
            "features": [_feature(f) for f in self.features],
            "findings": [{"kind": x.kind, "feature": x.feature, "description": x.description, "detail": x.detail}
                         for x in self.findings],
            "not_compared": list(self.not_compared),
        }

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), indent=2, allow_nan=False)


def _metric_names(features: list[str]) -> dict[str, str]:
    """Feature -> its part of a metric key: MLflow's characters only, distinct for distinct features."""
    names: dict[str, str] = {}
    used: set[str] = set()
    for feature in features:
        base = _METRIC_UNSAFE.sub("_", feature).strip() or "_"
        key, n = base, 1
        while key in used:
            n += 1
            key = f"{base}_{n}"
        used.add(key)
        names[feature] = key
    return names


def _table(info: TableInfo) -> dict[str, Any]:
    return {"files": list(info.files), "rows_read": info.rows_read, "rows_kept": info.rows_kept,
            "sampled": info.sampled}


def _feature(feature: FeatureResult) -> dict[str, Any]:
    def number(value: float | None) -> float | None:
        return value if value is None or math.isfinite(value) else None

    return {
        "name": feature.name, "kind": feature.kind, "drifted": feature.drifted,
        "reference_rows": feature.reference_rows, "current_rows": feature.current_rows,
        "null_shares": {"reference": feature.null_shares[0], "current": feature.null_shares[1]},
        "tests": [{"test": t.name, "statistic": number(t.statistic), "p_value": number(t.p_value),
                   "threshold": t.threshold, "drifted": t.drifted} for t in feature.tests],
        "bins": None if feature.bins is None else {"labels": list(feature.bins.labels),
                                                   "reference": list(feature.bins.reference),
                                                   "current": list(feature.bins.current)},
    }
