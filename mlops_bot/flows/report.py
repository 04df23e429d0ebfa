"""`mlops-bot report`: post a Decision where reviewers see it.

The report is never lost: the report file, the job summary and the CI outputs are written FIRST, then the
sticky comment and the commit status are posted. A 403 there (a fork's read-only token) is not a failure:
one warning, and a follow-up `workflow_run` job posts it later (`report --decision F --pr N`, see below).
Any other forge failure is an error (exit 3) once everything else was tried. Otherwise the exit code is the
decision's: 0 pass, 1 fail. `publish()` is the reusable part (the `ci` command calls it).

The two-workflow pattern for fork PRs: the `pull_request` workflow (read-only token, no secrets) runs the
check and uploads `.mlops-bot/` (report.md, decision.json) and the PR number as an artifact. A second
workflow, `on: workflow_run: {workflows: [ml], types: [completed]}` with `pull-requests: write` and
`statuses: write`, downloads it WITHOUT checking out or running the PR's code and runs
`mlops-bot report --decision decision.json --pr N`. The status goes to the run's head commit
(workflow_run.head_sha, from GitHub), and the comment only if PR N's head is that same commit.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, TextIO
from urllib.parse import quote

from ..ci.context import CIContext, read_context
from ..ci.outputs import CIOutput
from ..config.model import Report
from ..console import emit_json, log
from ..decide.decision import Decision
from ..decide.document import from_document
from ..errors import EXIT_NEGATIVE, EXIT_OK, BotError, InvalidParameter, NotFound, UsageError
from ..events.bus import emit
from ..events.event import model_subject
from ..forges.base import CommentResult, Forge, StatusRef, is_degradable
from ..report.markdown import Links, marker, render_markdown
from ..support.state import DECISION_FILE, state_relpath
from ..support.urls import link_base
from .project import Project

DEFAULT_DECISION = state_relpath(DECISION_FILE)
StatusPost = Literal["posted", "denied", "failed", "skipped"]  # denied: the token may not (a fork's)


@dataclass(frozen=True)
class Publication:
    report_file: Path
    summary_file: Path | None = None
    outputs_file: Path | None = None
    comment_url: str = ""
    comment_action: str = ""  # created | updated | unchanged | "" (not posted)
    status: StatusPost = "skipped"
    warning: str = ""  # the degrade warning, when there was one

    def to_dict(self) -> dict[str, Any]:
        return {"report_file": str(self.report_file), "summary_file": _opt(self.summary_file),
                "outputs_file": _opt(self.outputs_file), "comment": {"action": self.comment_action,
                "url": self.comment_url} if self.comment_action else None, "status": self.status,
                "warning": self.warning or None}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--decision", default=DEFAULT_DECISION, metavar="FILE",
                        help=f"the Decision JSON written by `mlops-bot compare --json` (default: {DEFAULT_DECISION})")
    parser.add_argument("--output", metavar="FILE", help="the report file (default: ml.yaml's report.file)")
    parser.add_argument("--pr", type=int, metavar="N", help="the pull/merge request to comment on (default: the "
                        "CI event's); for a follow-up workflow_run job")
    parser.add_argument("--sha", metavar="SHA", help="the commit to set the status on (default: the PR's head)")
    parser.add_argument("--no-post", action="store_true", help="write the file, summary and outputs only")
    parser.epilog = ("Exit 0 when the decision passed, 1 when it failed (the report is posted either way), 2 for "
                     "bad input, 3 when the forge refused for another reason than permissions.")


def main(args: argparse.Namespace, project: Project) -> int:
    root = project.directory
    decision = load_decision(root / args.decision)
    config = project.config_if_present()  # a follow-up job may have only the decision
    settings, tracking_uri = (config.report, config.tracking.uri) if config else (Report(), None)
    if args.output:
        settings = replace(settings, file=args.output)
    context = read_context(project.env)
    if args.pr is not None or args.sha:
        context = replace(context, pr_number=args.pr if args.pr is not None else context.pr_number,
                          sha=args.sha or context.sha, previous_sha="" if args.sha else context.previous_sha)
    delivery = Delivery(context, project.env, root, settings, links_for(context, decision, tracking_uri),
                        post=not args.no_post, stream=sys.stderr if args.json else sys.stdout,
                        check_head=args.pr is not None)
    publication = publish(decision, delivery)
    if args.json:
        emit_json({"verdict": decision.verdict, **publication.to_dict()})
    log(f"mlops-bot: {decision.verdict}: {decision.summary}")
    return EXIT_OK if decision.passed else EXIT_NEGATIVE


def load_decision(path: Path) -> Decision:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{path}: no such decision file; write one with `mlops-bot compare --json > {path.name}` "
                         "and pass it with --decision.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read the decision file {path} ({getattr(exc, 'strerror', None) or exc}).") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path}:{exc.lineno}:{exc.colno}: the decision file is not valid JSON ({exc.msg}).") from None
    try:
        return from_document(doc)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise UsageError(f"{path}: not a Decision document ({type(exc).__name__}: {exc}); write it with "
                         "`mlops-bot compare --json`.") from None


@dataclass(frozen=True)
class Delivery:
    """Where a report goes and how: the CI context and its environment, the project root, ml.yaml's report
    settings. `forge` replaces the one `open_forge` would choose (tests, or a caller that has one already).
    `check_head`: the PR number came from outside the event (an artifact): post only if that PR's head is
    the commit the report is about."""

    context: CIContext
    env: Mapping[str, str]
    root: Path = Path(".")
    settings: Report = field(default_factory=Report)
    links: Links | None = None
    post: bool = True
    stream: TextIO | None = None
    forge: Forge | None = None
    check_head: bool = False


def publish(decision: Decision, delivery: Delivery) -> Publication:
    """Writes the report file, summary and outputs, then posts the comment and status (unless `post` is False)."""
    context, settings, root = delivery.context, delivery.settings, delivery.root
    links = delivery.links or links_for(context, decision)
    markdown = render_markdown(decision, links=links, history=settings.history, chart=settings.chart == "mermaid")
    out = CIOutput(context.platform, delivery.env, root=root, stream=delivery.stream)
    report_file = _write_report(root / settings.file, markdown)
    summary = out.summary(markdown) if settings.summary else None
    outputs = out.outputs(_outputs(decision, report_file))
    out.metrics(decision.challenger.metrics, prefix=f"{decision.model}_")
    done = Publication(report_file=report_file, summary_file=summary, outputs_file=outputs)
    if not delivery.post:
        return done
    forge = delivery.forge
    if forge is None:
        from ..forges import open_forge

        forge = open_forge(context, delivery.env, root=root, stream=delivery.stream)
    if delivery.check_head and context.pr_number is not None and context.in_ci:
        _check_head(forge, context)
    sticky = marker(decision.model) if settings.sticky else ""
    posted = _post(decision, markdown, context, forge, _Posted(out, done, sticky))
    emit(root, "report.posted", model_subject(decision.model), {
        "model": decision.model, "verdict": decision.verdict, "run_id": decision.challenger.run_id,
        "pull_request": context.pr_number, "sha": context.sha or None, "comment_url": posted.comment_url or None,
        "comment": posted.comment_action or None, "status": posted.status, "forge": forge.name})
    return posted


@dataclass(frozen=True)
class _Posted:
    """What was written before posting: the outputs writer, the Publication so far, the sticky marker."""

    out: CIOutput
    done: Publication
    sticky_marker: str


def _post(decision: Decision, markdown: str, context: CIContext, forge: Forge, posted: _Posted) -> Publication:
    """The comment, then the status, whose target_url is the comment (so that the next check finds the comment
    without reading every page of them) or else the CI run; each is tried whatever happened to the other."""
    out, done = posted.out, posted.done
    errors: list[BotError] = []
    comment: CommentResult | None = None
    label = f"mlops-bot/{decision.model}"
    if context.pr_number is not None or not context.in_ci:
        try:
            comment = forge.upsert_comment(posted.sticky_marker, markdown, remembered=StatusRef(
                label, context.sha, context.previous_sha) if context.sha else None)
        except BotError as exc:
            errors.append(exc)
    status: StatusPost = "skipped"
    # A dead token or an API that stays down would only fail the status the same way: spare the wait.
    if context.sha and not any(_hopeless(e) for e in errors):
        target = comment.url if comment is not None and comment.url.startswith(("https://", "http://")) else ""
        try:
            forge.set_status(context.sha, "success" if decision.passed else "failure", decision.summary,
                             target_url=target or context.run_url, label=label)
            status = "posted"
        except BotError as exc:
            errors.append(exc)
            status = "denied" if is_degradable(exc) else "failed"
    if status == "posted":
        _check_run(decision, markdown, context, forge)
    warning = _degrade(errors, out, done)
    hard = [e for e in errors if not is_degradable(e)]
    for extra in hard[1:]:
        log(f"mlops-bot: error: {extra}")
    if hard:
        raise hard[0]
    if comment is not None and comment.url and context.in_ci:
        out.outputs({"comment-url": comment.url})
    return replace(done, comment_url=comment.url if comment else "", status=status, warning=warning,
                   comment_action=comment.action if comment else "")


def _check_run(decision: Decision, markdown: str, context: CIContext, forge: Forge) -> None:
    """Best effort: where the token may create check runs (GitHub Actions' token with `checks: write`), the
    whole report also shows in the Checks tab; elsewhere the status carries the verdict."""
    try:
        forge.create_check_run(context.sha, f"mlops-bot report: {decision.model}",
                               "success" if decision.passed else "failure", f"{decision.verdict}: {decision.summary}",
                               markdown, details_url=context.run_url)
    except BotError as exc:
        log(f"mlops-bot: no check run ({exc}); the commit status carries the verdict.")


def _check_head(forge: Forge, context: CIContext) -> None:
    head = forge.pull_request_head(int(context.pr_number or 0))
    if head != context.sha:
        raise UsageError(f"pull request #{context.pr_number} is at {head[:12]}, not at {context.sha[:12] or '?'} "
                         "which this report is about; nothing was posted (a newer commit reports for itself).")


def _hopeless(exc: BotError) -> bool:
    return not is_degradable(exc) and not isinstance(exc, (NotFound, InvalidParameter, UsageError))


def _degrade(errors: list[BotError], out: CIOutput, done: Publication) -> str:
    denied = next((e for e in errors if is_degradable(e)), None)
    if denied is None:
        return ""
    kept = f"{done.report_file}" + (" and the job summary" if done.summary_file else "")
    warning = (f"{denied} The report is kept in {kept}; a follow-up workflow_run job with a write token can post "
               "it with `mlops-bot report --decision FILE --pr N`.")
    out.warning(warning, key="forge-denied")
    return warning


def _write_report(path: Path, markdown: str) -> Path:
    from ..support.files import write_atomic

    write_atomic(path, markdown)
    return path


def _outputs(decision: Decision, report_file: Path) -> dict[str, str]:
    return {"verdict": decision.verdict, "passed": "true" if decision.passed else "false",
            "model": decision.model, "summary": decision.summary, "report-file": str(report_file),
            "challenger-run-id": decision.challenger.run_id or "",
            "champion-version": decision.champion.version or "" if decision.champion else ""}


def links_for(context: CIContext, decision: Decision, tracking_uri: str | None = None) -> Links:
    """Commit links to the forge, run links to the tracking server's UI (when it has one)."""
    return Links(run=run_link(tracking_uri, decision), commit=_commit_link(context))


def run_link(tracking_uri: str | None, decision: Decision) -> str | None:
    """The MLflow UI's page of a run in the challenger's experiment, `{run_id}` left for the report to fill in;
    None unless the tracking URI is http(s). Built on support/urls.link_base: no credentials, no query."""
    base = link_base(tracking_uri or "")
    experiment = decision.challenger.lineage.get("experiment")
    if not base or not experiment:
        return None
    return f"{base}/#/experiments/{quote(experiment, safe='')}/runs/{{run_id}}"


def _commit_link(context: CIContext) -> str | None:
    base = link_base(context.server_url) if context.in_ci and context.repository else None
    if not base:
        return None
    middle = "/-/commit/" if context.platform == "gitlab" else "/commit/"
    return f"{base}/{quote(context.repository)}{middle}{{commit}}"


def _opt(path: Path | None) -> str | None:
    return None if path is None else str(path)
