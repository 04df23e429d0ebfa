"""Directories of local state (`.mlops-bot/`: caches, the embedded store, the audit log), which must never
be committed: each gets a `.gitignore` of `*` when it is created."""

from __future__ import annotations

from pathlib import Path


def local_state_dir(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    ignore = directory / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# Written by mlops-bot: local state, never committed.\n*\n")
    return directory
