"""The local stand-in for a forge: outside CI the "comment" is a file, printed where the user can read it."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TextIO

from ..console import log
from ..errors import UsageError
from ..support.state import COMMENT_FILE, PIPELINE_REQUESTS_FILE
from .base import (
    Approver,
    CheckConclusion,
    CommentAction,
    CommentResult,
    Discussion,
    StatusRef,
    StatusState,
    WrittenComment,
    fit_description,
)


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
        return self._request({"kind": "pipeline", "ref": ref, "inputs": dict(inputs)}, f"the CI pipeline on {ref}")

    def rerun_check(self, number: int, sha: str) -> str:
        """Recorded like trigger_pipeline (kind "rerun"): there is no pull request check to run again locally."""
        return self._request({"kind": "rerun", "number": number, "sha": sha},
                             f"running the check of #{number} on {sha[:12]} again")

    def _request(self, entry: dict[str, object], what: str) -> str:
        import json
        from datetime import datetime, timezone

        from ..support.state import local_state_dir

        path = local_state_dir(self._directory) / PIPELINE_REQUESTS_FILE
        at = datetime.now(timezone.utc).isoformat(timespec="seconds")
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps({**entry, "at": at}, sort_keys=True) + "\n")
        log(f"mlops-bot: local forge: {what} was requested, recorded in {path} (in GitHub Actions or GitLab CI "
            "it starts)")
        return str(path)

    # governance

    def role_of(self, login: str) -> str:
        """"admin": outside CI the one asking is the person at the terminal, who can already write the registry
        and ml.yaml; there is no forge whose roles could say otherwise."""
        return "admin"

    def discussion(self, number: int) -> Discussion:
        """A UsageError: no pull request exists locally, and inventing one would let a ChatOps command run as if a
        forge had vouched for it."""
        raise UsageError(f"there is no pull request #{number} outside GitHub Actions or GitLab CI; ChatOps commands "
                         "are read from pull/merge request comments in CI. Locally, run the command itself "
                         "(e.g. mlops-bot promote).")

    def approvers(self, number: int) -> list[Approver]:
        return []  # no reviews locally

    def environment_approvers(self, run_id: str, environment: str) -> list[Approver]:
        return []  # no deployment environments locally

    def comment_by_url(self, url: str) -> WrittenComment | None:
        return None  # no comments to read locally: a recorded approval is not confirmed here (flows/approvers)

    def reply(self, number: int, body: str) -> CommentResult:
        """Appended to the comment file after what is there (the report, earlier replies) and shown, as a reply
        lands below the report on a forge."""
        from ..support.files import write_atomic

        path = self.comment_path
        try:
            before = path.read_text(encoding="utf-8")
        except OSError:
            before = ""
        text = body if body.endswith("\n") else body + "\n"
        write_atomic(path, f"{before.rstrip()}\n\n---\n\n{text}" if before.strip() else text)
        stream = self._stream or sys.stdout
        stream.write(text)
        stream.flush()
        return CommentResult("created", str(path))
