"""The event payload GitHub Actions writes at GITHUB_EVENT_PATH: reading it, and finding values in it.

Every way the file can be unusable is a UsageError that says what to fix: the context cannot be read
without it, and a wrong GITHUB_EVENT_NAME for the payload shows up here as a missing key.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import UsageError

_MISSING = object()


def load_payload(path: str) -> dict[str, Any]:
    """The JSON payload GitHub wrote at GITHUB_EVENT_PATH; a clear UsageError for every way it can be unusable."""
    if not path:
        raise UsageError("GITHUB_EVENT_PATH is not set; mlops-bot reads the event payload GitHub Actions writes "
                         "there (run it inside a workflow, or unset GITHUB_ACTIONS to run locally).")
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise UsageError(f"cannot read the GitHub event file {path} ({why}); GITHUB_EVENT_PATH must name the "
                         "payload file of the running workflow.") from exc
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path}:{exc.lineno}:{exc.colno}: the GitHub event file is not valid JSON "
                         f"({exc.msg}).") from exc
    if not isinstance(payload, dict):
        raise UsageError(f"{path}: the GitHub event file holds a JSON {type(payload).__name__}, not an object.")
    return payload


def dig(payload: Mapping[str, Any], dotted: str, path: str = "", default: Any = _MISSING) -> Any:
    """The value at `dotted` (e.g. "pull_request.head.sha"); `default` when absent or null, else a UsageError
    naming the file at `path`."""
    node: Any = payload
    for key in dotted.split("."):
        if not isinstance(node, Mapping) or node.get(key) is None:
            if default is not _MISSING:
                return default
            raise UsageError(f"{path or 'the event file'}: the payload has no {dotted}; is GITHUB_EVENT_NAME right "
                             "for this payload?")
        node = node[key]
    return node


def workflow_file(workflow_ref: str) -> str:
    """The running workflow's file name from GITHUB_WORKFLOW_REF: owner/repo/.github/workflows/ci.yml@ref -> ci.yml."""
    path = workflow_ref.split("@", 1)[0]
    return path.rsplit("/", 1)[-1] if "/.github/workflows/" in path else ""
