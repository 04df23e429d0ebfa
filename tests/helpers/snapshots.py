"""Snapshot files of rendered reports (tests/report/snapshots)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SNAPSHOTS = Path(__file__).resolve().parents[1] / "report" / "snapshots"


def check_snapshot(name: str, text: str) -> None:
    """Compares with tests/report/snapshots/NAME; UPDATE_SNAPSHOTS=1 rewrites it (review the diff)."""
    path = SNAPSHOTS / name
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        path.write_text(text, encoding="utf-8")
        return
    if not path.exists():
        pytest.fail(f"snapshot {path} is missing; run with UPDATE_SNAPSHOTS=1 and review it")
    assert text == path.read_text(encoding="utf-8")
