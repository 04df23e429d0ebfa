"""`mlops-bot chatops`: answer one `/mlops-bot ...` comment on a pull/merge request.

In a GitHub workflow on `issue_comment` it reads GITHUB_EVENT_PATH; elsewhere `--event FILE` names a GitHub
issue_comment or GitLab note payload (with MLOPS_BOT_FORGE and the forge's variables saying where to answer,
as for `serve`). The command is checked through the forge's API and the registry (chatops/authorize.py), done
with the same flows as the command line, and answered with a reply (flows/chatops_act.py).

CI outputs: `chatops-command` (the verb, empty when the comment held none to act on), `chatops-outcome`, and
`chatops-ref`: the pull request's head commit when the workflow must run its check now (`rerun`, or `compare`
before the head commit has a run; a same-repository pull request only). `--after-check` is the workflow's
second call, once that check ran. `--json` prints {command, allowed, reason, outcome, ref, reply}.
Exit 0 when the command was done, refused politely or ignored; a failure is answered and exits as usual.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..chatops.comment import Comment, from_payload
from ..ci.context import CIContext, read_context, read_forge_context
from ..ci.outputs import CIOutput
from ..console import emit_json, log
from ..errors import EXIT_OK, UsageError
from ..forges.base import Forge
from .chatops_act import Mode, handle
from .project import Project

MAX_PAYLOAD = 8 * 1024 * 1024  # webhook payloads are capped at 25 MB by GitHub; a comment's is far smaller


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--event", metavar="FILE", help="the issue_comment (GitHub) or note (GitLab) payload "
                                                        "(default: GITHUB_EVENT_PATH in a GitHub workflow)")
    parser.add_argument("--after-check", action="store_true",
                        help="the workflow's second call, after it ran the check on chatops-ref")
    parser.epilog = ("Exit 0 when the command was done, politely refused or not one to act on; 2 for a payload "
                     "that cannot be read, 3 when the forge or the registry failed (the comment is answered).")


def main(args: argparse.Namespace, project: Project) -> int:
    env = project.env
    context = read_context(env)
    payload = _payload(args.event, context, env)
    comment = from_payload(payload)
    where = chatops_context(env)
    why = foreign(where, comment, _repository(payload))
    if why:
        raise UsageError(f"{why} Nothing was done.")
    forge = open_chatops_forge(project, where)
    mode: Mode = "after-check" if args.after_check else "workflow" if context.platform == "github" else "serve"
    outcome = handle(project, forge, comment, mode)
    out = CIOutput(context.platform, env, root=project.directory, stream=sys.stderr if args.json else None)
    out.outputs({"chatops-command": outcome.command, "chatops-outcome": outcome.outcome, "chatops-ref": outcome.ref})
    if args.json:
        emit_json(outcome.to_json())
    log(f"mlops-bot chatops: {outcome.outcome}" + (f": {outcome.reason}" if outcome.reason else ""))
    return EXIT_OK


def _payload(path: str | None, context: CIContext, env: Mapping[str, str]) -> Mapping[str, Any]:
    if path is None:
        if context.platform != "github":
            raise UsageError("mlops-bot chatops needs the comment's payload: run it in a GitHub workflow on "
                             "issue_comment, or pass --event FILE (a GitHub issue_comment or GitLab note payload).")
        if context.event != "issue_comment":
            raise UsageError(f"mlops-bot chatops answers issue_comment events, and this workflow runs for "
                             f"{context.event}; trigger it with `on: issue_comment: types: [created]`.")
        path = env.get("GITHUB_EVENT_PATH", "")
    return read_payload(Path(path))


def read_payload(path: Path) -> Mapping[str, Any]:
    """A JSON object from `path`, bounded; a UsageError naming the file otherwise."""
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_PAYLOAD + 1)
    except OSError as exc:
        raise UsageError(f"cannot read the event payload {path} ({exc.strerror or exc}); pass the file GitHub or "
                         "GitLab sent.") from None
    if len(raw) > MAX_PAYLOAD:
        raise UsageError(f"{path}: the event payload is larger than {MAX_PAYLOAD} bytes; it is not a comment's.")
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise UsageError(f"{path}: the event payload is not JSON ({exc}).") from None
    if not isinstance(doc, dict):
        raise UsageError(f"{path}: the event payload is a JSON {type(doc).__name__}, not an object.")
    return doc


def _repository(payload: Mapping[str, Any]) -> str:
    """The repository (GitHub) or project path (GitLab) the payload says the comment is in."""
    found = payload.get("project") if payload.get("object_kind") == "note" else payload.get("repository")
    key = "path_with_namespace" if payload.get("object_kind") == "note" else "full_name"
    value = found.get(key) if isinstance(found, Mapping) else None
    return value if isinstance(value, str) else ""


def chatops_context(env: Mapping[str, str]) -> CIContext:
    """Where to ask and answer: the job's forge, or the one MLOPS_BOT_FORGE names (`serve`, a relay)."""
    from dataclasses import replace

    context = read_context(env)
    if not context.in_ci:
        context = read_forge_context(env, reason="answering a ChatOps comment")
    workflow = env.get("MLOPS_BOT_RERUN_WORKFLOW") or context.workflow
    return replace(context, workflow=workflow)


def foreign(context: CIContext, comment: Comment, repository: str) -> str:
    """Why the comment is not one for this bot ("" when it is): it was written on another forge or in another
    repository than the one the bot acts on (a webhook shared by several repositories)."""
    if context.platform != "local" and context.platform != comment.forge:
        return (f"the comment comes from {comment.forge} but the bot is set up for {context.platform} "
                "(MLOPS_BOT_FORGE); answer each forge's comments with its own settings.")
    if repository and context.repository and repository.lower() != context.repository.lower():
        return f"the comment was written in {repository}, not in {context.repository} where this bot acts."
    return ""


def open_chatops_forge(project: Project, context: CIContext) -> Forge:
    from ..forges import open_forge

    return open_forge(context, project.env, root=project.directory)
