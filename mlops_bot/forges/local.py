"""The local stand-in for a forge: outside CI the "comment" is a file, printed where the user can read it."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TextIO

from ..console import log
from ..errors import UsageError
from ..support.state import COMMENT_FILE, PIPELINE_REQUESTS_FILE
from .base import CheckConclusion, CommentAction, CommentResult, StatusRef, StatusState, fit_description


class LocalForge:
    name = "local"

    def __init__(self, directory: Path, stream: TextIO | None = None) -> None:
        self._directory = directory
        self._stream = stream

    @property
    def comment_path(self) -> Path:
        return self._directory / COMMENT_FILE

    def upsert_comment(self, marker: str, body: str, *, remembered: StatusRef | None = None) -> CommentResult:
        """One comment file; nothing to look up, so `remembered` changes nothing."""
        from ..support.files import write_atomic

        path = self.comment_path
        try:
            before: str | None = path.read_text(encoding="utf-8")
        except OSError:
            before = None
        action: CommentAction = "created" if before is None else "unchanged" if before == body else "updated"
        write_atomic(path, body)
        stream = self._stream or sys.stdout
        stream.write(body if body.endswith("\n") else body + "\n")
        stream.flush()
        return CommentResult(action, str(path))

    def set_status(self, sha: str, state: StatusState, description: str, target_url: str = "",
                   label: str = "mlops-bot") -> None:
        where = f" on {sha[:12]}" if sha else ""
        log(f"mlops-bot: status {label}{where}: {state}: {fit_description(description)}")

    def create_check_run(self, sha: str, name: str, conclusion: CheckConclusion, title: str, summary: str,
                         details_url: str = "") -> str | None:
        return None

    def pull_request_head(self, number: int) -> str:
        raise UsageError(f"cannot read pull request #{number} outside GitHub Actions or GitLab CI; run in CI.")

    def open_pull_request(self, head: str, base: str, title: str, body: str) -> str:
        raise UsageError(f"cannot open a pull request from {head} into {base} outside GitHub Actions or GitLab CI; "
                         "run in CI, or open it by hand.")

    def trigger_pipeline(self, ref: str, inputs: Mapping[str, str]) -> str:
        """No CI to start here: the request is appended to .mlops-bot/pipeline-requests.jsonl and shown, as the
        comment goes to comment.md; in GitHub Actions or GitLab CI the forge starts the pipeline."""
        import json
        from datetime import datetime, timezone

        from ..support.state import local_state_dir

        path = local_state_dir(self._directory) / PIPELINE_REQUESTS_FILE
        at = datetime.now(timezone.utc).isoformat(timespec="seconds")
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps({"ref": ref, "inputs": dict(inputs), "at": at}, sort_keys=True) + "\n")
        log(f"mlops-bot: local forge: the CI pipeline on {ref} was requested, recorded in {path} (in GitHub Actions "
            "or GitLab CI it starts)")
        return str(path)
