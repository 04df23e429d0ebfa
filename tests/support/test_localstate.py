"""Local state never shows up as something to commit, whichever part creates `.mlops-bot/` first."""

from __future__ import annotations

import subprocess
from pathlib import Path

from mlops_bot.events.audit import EventLog, events_dir
from mlops_bot.events.event import Event
from mlops_bot.registry.local.store import LocalRegistry


def untracked(repo: Path) -> list[str]:
    out = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=all"],
                         capture_output=True, text=True, check=True).stdout
    return out.splitlines()


def test_the_embedded_store_and_the_audit_log_are_ignored_by_git(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    registry = LocalRegistry(tmp_path / ".mlops-bot")
    registry.get_or_create_experiment("e")
    registry.close()
    EventLog(events_dir(tmp_path)).append_many([Event("run.started", "runs/1")])
    assert (tmp_path / ".mlops-bot" / "registry.db").exists()
    assert untracked(tmp_path) == []
