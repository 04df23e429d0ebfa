"""The ml.yaml documents the JSON Schema passed, so that an unchanged file is not validated again, nor jsonschema
imported: `.mlops-bot/validated.json`, a few keys and nothing else (never a problem, never a value).

A key covers what the schema's verdict depends on: the schema's text, this mlops-bot (its version and the
validator's code) and jsonschema's installed files, ml.yaml's bytes and the document they make (with the values
of the ${VAR}s it reads, which enter the key only through the digest). It also covers ml.yaml's inode and
ctime: the state directory is ignored by git, yet a pull request could commit a file into it (`git add -f`);
a checkout sets those two and no one can choose them, so a planted record matches nothing. A record is written
only into a state directory that exists (a first `validate` leaves no new directory behind), and a damaged or
foreign one is read as empty.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from functools import cache
from pathlib import Path

from .. import __version__
from ..support.state import VALIDATED_FILE, state_path
from .source import Document

MAX_KEYS = 8  # a few ml.yaml versions side by side (branches, env values); older ones are forgotten
MAX_BYTES = 4096  # eight keys need about 600; anything larger is not ours
_FORMAT = 1


@cache
def _code() -> list[object]:
    """What validates besides the schema: our validator module and jsonschema, as installed now."""
    from importlib.util import find_spec

    spec = find_spec("jsonschema")
    found: list[object] = [__version__]
    for origin in (str(Path(__file__).with_name("schema.py")), spec.origin if spec else None):
        try:
            st = os.stat(origin) if origin else None
        except OSError:
            st = None
        found.append([origin, st.st_size, st.st_mtime_ns] if st else None)
    return found


def document_key(doc: Document, schema: bytes) -> str | None:
    """The key of `doc` under `schema`; None when it cannot be made (the file is gone), and then nothing is kept."""
    try:
        st = os.stat(doc.file)
        header = [_FORMAT, _code(), st.st_ino, st.st_ctime_ns, hashlib.sha256(schema).hexdigest(),
                  hashlib.sha256(doc.raw).hexdigest()]
        text = json.dumps([header, doc.data], separators=(",", ":"), allow_nan=False)
    except (OSError, ValueError, TypeError):
        return None
    return hashlib.sha256(text.encode()).hexdigest()


def _keys(root: Path) -> list[str]:
    try:
        with open(state_path(root, VALIDATED_FILE), "rb") as handle:
            doc = json.loads(handle.read(MAX_BYTES + 1))
    except (OSError, ValueError):
        return []
    keys = doc.get("keys") if isinstance(doc, dict) and doc.get("format") == _FORMAT else None
    if not isinstance(keys, list):
        return []
    return [k for k in keys[:MAX_KEYS] if isinstance(k, str)]


def passed(root: Path, key: str) -> bool:
    """Whether the project at `root` recorded `key` as a document the schema passed."""
    return key in _keys(root)


def remember(root: Path, key: str) -> None:
    """Records `key` (first, the oldest dropped); silently not when the state directory is absent or read-only."""
    from ..support.files import WriteFailed, write_atomic  # tempfile and threading: not needed on a hit

    if not state_path(root).is_dir():
        return
    keys = [key, *(k for k in _keys(root) if k != key)][:MAX_KEYS]
    with contextlib.suppress(WriteFailed):  # a cache: validating again next time is always correct
        write_atomic(state_path(root, VALIDATED_FILE), json.dumps({"format": _FORMAT, "keys": keys}))
