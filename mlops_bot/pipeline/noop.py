"""The no-op shortcut: replay the last fully cached result when provably nothing changed.

After a `run` found every step cached, this records the (size, mtime_ns, inode) of ml.yaml, the params
file, ml.lock and every dep and out (each file inside directories too, and the directories themselves, whose
mtime changes when an entry is added or removed), plus the values of the variables ml.yaml interpolates. The
next `run` compares those with a few stat calls and, when all match, prints the same result without
parsing, validating or hashing anything (git's index and make use the same idea). Anything else - a file
newer than the timestamp granularity, another mlops-bot version, options other than a plain run - is a
miss, and the full path decides. Only stdlib modules, blake3 and the state names are imported here: the fast
path (hashlib would add 4-5 ms of OpenSSL set-up, a tenth of the whole no-op).
"""

from __future__ import annotations

import json
import os
import re
import time

import blake3

from ..support.state import NOOP_FILE, STATE_DIR

TYPE_CHECKING = False  # typing's own costs 2 ms: the no-op answers before it is imported (mlops_bot/entry.py)
if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path
    from typing import Any

RACY_NS = 2_000_000_000  # as in hashing: a file this young may still change within its mtime tick
_SKIP = frozenset({".git", STATE_DIR, "__pycache__"})
_VARIABLE = re.compile(rb"\$\{([A-Za-z_][A-Za-z0-9_]*)")


def _env_digest(config_bytes: bytes) -> str:
    names = sorted({m.decode() for m in _VARIABLE.findall(config_bytes)})
    values = json.dumps([[n, os.environ.get(n)] for n in names])
    return str(blake3.blake3(config_bytes + b"\0" + values.encode()).hexdigest())  # values may be secrets


def _stat(path: str) -> list[int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_size if not os.path.isdir(path) else -1, st.st_mtime_ns, st.st_ino]


def snapshot(root: str | Path, paths: Iterable[str]) -> dict[str, list[int] | None]:
    """rel path -> [size (-1 for a directory), mtime_ns, inode], walking directories."""
    out: dict[str, list[int] | None] = {}
    for rel in sorted(set(paths)):
        full = os.path.join(root, rel)
        out[rel] = _stat(full)
        if out[rel] is None or not os.path.isdir(full):
            continue
        for folder, dirs, files in os.walk(full):
            dirs[:] = sorted(d for d in dirs if d not in _SKIP)
            for name in sorted(dirs) + sorted(files):
                path = os.path.join(folder, name)
                out[os.path.relpath(path, root)] = _stat(path)
    return out


def record(state_dir: Path, config_path: Path, version: str, paths: Iterable[str], result: dict[str, Any]) -> None:
    """Remembers `result` for the current state, unless a file is too young to be trusted by its stat."""
    from ..support.files import write_atomic

    target = state_dir / NOOP_FILE
    declared = sorted({config_path.name, *paths})
    files = snapshot(config_path.parent, declared)
    limit = time.time_ns() - RACY_NS
    if any(s is None or s[1] > limit for s in files.values()):
        target.unlink(missing_ok=True)
        return
    doc = {"version": version, "config": os.path.realpath(config_path), "env": _env_digest(config_path.read_bytes()),
           "paths": declared, "files": files, "result": result}
    write_atomic(target, json.dumps(doc, separators=(",", ":")))


def replay(config_path: str | Path, version: str) -> dict[str, Any] | None:
    """The recorded result when nothing it depends on changed; None on any doubt. Paths as strings (os.path):
    the no-op is answered before pathlib is imported."""
    config = os.path.realpath(config_path)
    project = os.path.dirname(config)
    try:
        with open(os.path.join(project, STATE_DIR, NOOP_FILE), encoding="utf-8") as handle:
            doc = json.load(handle)
        if doc["version"] != version or doc["config"] != config:
            return None
        with open(config, "rb") as handle:
            if doc["env"] != _env_digest(handle.read()):
                return None
        same = snapshot(project, doc["paths"]) == doc["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    result: dict[str, Any] | None = doc["result"] if same else None
    return result
