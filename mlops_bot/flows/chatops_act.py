"""Handling one ChatOps comment: read the command, check it (chatops/authorize.py), do it with the flows the
command line uses, and answer in a reply. `mlops-bot chatops` (a workflow's issue_comment job) and `serve`'s
`chatops` action both call `handle`.

Where it runs decides what `rerun` and `compare` do, since neither may run a pull request's code in the bot:
- "workflow": the job's template runs the PR check itself after this step, on the head commit this returns as
  `ref` (a same-repository pull request only: a fork's is refused before);
- "after-check": the second step of that job, once the check ran: `compare` answers now, `rerun` says nothing
  more (the check updated the sticky comment);
- "serve": `rerun` asks the forge to run the pull request's check again (Forge.rerun_check: GitHub re-runs the
  head commit's workflow run, GitLab creates a merge request pipeline) and answers with the URL to watch;
  `compare` answers when the head commit's run is on the tracking server.

A replayed comment moves nothing twice: an approval is recorded once (lifecycle/approvals), and a promote or
rollback whose move the registry already records with this comment's URL is answered "already done".
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

from ..chatops import answer
from ..chatops.authorize import Verdict, authorize
from ..chatops.command import Command
from ..chatops.comment import Comment
from ..console import log
from ..errors import BotError
from ..forges.base import Forge
from .project import Project

Mode = Literal["workflow", "after-check", "serve"]
BOT_LOGIN = "MLOPS_BOT_LOGIN"


@dataclass(frozen=True)
class Outcome:
    command: str  # the verb, "" when the comment held none to act on
    allowed: bool
    reason: str  # plain text: what happened or why not
    outcome: str  # ignored | help | refused | done | already | pending | unavailable | failed
    ref: str = ""  # the head commit the workflow must check again (mode "workflow")
    reply_url: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"command": self.command or None, "allowed": self.allowed, "reason": self.reason,
                "outcome": self.outcome, "ref": self.ref or None, "reply": self.reply_url or None}


@dataclass(frozen=True)
class _Ask:
    project: Project
    forge: Forge
    comment: Comment
    command: Command
    verdict: Verdict
    mode: Mode


@dataclass(frozen=True)
class _Done:
    outcome: str
    text: str  # "" : no reply
    ref: str = ""
    report: str = ""  # a comparison's markdown, shown under the reply
    link: str = ""  # a URL to watch (the check run again): in the reason, and a link under the reply


def handle(project: Project, forge: Forge, comment: Comment, mode: Mode) -> Outcome:
    why = comment.ignored(project.env.get(BOT_LOGIN, ""))
    command = comment.command() if not why else None
    if command is None:
        reason = why or "the comment holds no /mlops-bot command"
        log(f"mlops-bot chatops: ignored: {reason}")
        return Outcome("", False, reason, "ignored")
    if command.verb == "help":
        url = forge.reply(comment.number or 0, answer.help_text(comment, command)).url
        return Outcome("help", True, command.problem or "the commands were listed", "help", reply_url=url)
    try:
        verdict = authorize(project.config, project.registry, forge, comment, command)
        if not verdict.allowed:
            log(f"mlops-bot chatops: refused {command.line!r} by {comment.author}: {verdict.reason}")
            return _answered(forge, comment, command, Outcome(command.verb, False, verdict.reason, "refused"))
        done = _ACTS[command.verb](_Ask(project, forge, comment, command, verdict, mode))
    except BotError as exc:
        if _refusal(exc):
            return _answered(forge, comment, command, Outcome(command.verb, False, str(exc), "refused"))
        _tell_failure(forge, comment, command, exc)
        raise
    reason = f"{done.text} Watch it: {done.link}" if done.link else done.text
    log(f"mlops-bot chatops: {command.verb} by {comment.author}: {done.outcome}: {reason}")
    outcome = Outcome(command.verb, True, reason, done.outcome, done.ref)
    if not done.text:
        return outcome
    report = done.report or _watch(done.link)
    body = answer.with_report(comment, command, done.text, report) if report else \
        answer.reply(comment, command, done.text)
    return replace(outcome, reply_url=forge.reply(comment.number or 0, body).url)


def _answered(forge: Forge, comment: Comment, command: Command, outcome: Outcome) -> Outcome:
    body = answer.reply(comment, command, outcome.reason)
    return replace(outcome, reply_url=forge.reply(comment.number or 0, body).url)


def _tell_failure(forge: Forge, comment: Comment, command: Command, exc: BotError) -> None:
    """The failure as a reply, best effort: the failure itself is what the job reports (its exit code)."""
    try:
        forge.reply(comment.number or 0, answer.reply(comment, command, f"that failed: {exc}"))
    except BotError as also:
        log(f"mlops-bot chatops: the failure could not be answered on #{comment.number}: {also}")


def _watch(url: str) -> str:
    """A line linking `url` (a forge's run or pipeline page), shown as the URL; "" when there is none. Only an
    http(s) URL without credentials becomes a link (support/urls.public_url), and its text is escaped."""
    from ..report import escape
    from ..support.urls import public_url

    if not url:
        return ""
    href = public_url(url)
    return f"Watch it: [{escape.text(url)}]({href})\n" if href else f"Watch it: {escape.text(url)}\n"


def _refusal(exc: BotError) -> bool:
    """The stage order or an approval refused the move: a polite answer, not a failure."""
    from ..lifecycle.stages import StageRefused

    return isinstance(exc, StageRefused)


def _mover(ask: _Ask) -> Any:
    from ..lifecycle.history import Mover

    return Mover(by=ask.comment.author, where=ask.comment.url)


def _done_by_this_comment(ask: _Ask, alias: str) -> str | None:
    """The version a move of `alias` made by this very comment went to, if the registry records one."""
    from ..lifecycle.history import moves_of, read_moves
    from ..registry import alias_holder

    registry, model, url = ask.project.registry, ask.project.config.model.name, ask.comment.url
    if not url:
        return None
    holder = alias_holder(registry, model, alias)
    moves = moves_of([holder]) if holder is not None else []
    if not any(m.alias == alias and m.where == url for m in moves):
        try:
            moves = read_moves(registry, model)
        except BotError:  # a registry without version search: the holder was what could be checked
            return None
    return next((m.version for m in reversed(moves) if m.alias == alias and m.where == url), None)


def _approve(ask: _Ask) -> _Done:
    from ..lifecycle.approvals import Approval, record_approval

    version, stage = ask.verdict.version, ask.verdict.stage
    assert version is not None and stage is not None  # authorize resolved both for approve
    approval = Approval(by=ask.comment.author, via="comment", where=ask.comment.url, role=ask.verdict.role)
    recorded, new = record_approval(ask.project.config, ask.project.registry, version, stage.alias, approval)
    if new:
        return _Done("done", f"recorded your approval of v{version.version} for {stage.alias} on the version (by "
                             f"{recorded.by}, role {recorded.role}, at {recorded.at}).")
    return _Done("already", f"your approval of v{version.version} for {stage.alias} is already recorded (at "
                            f"{recorded.at}); nothing changed.")


def _promote(ask: _Ask) -> _Done:
    from .promote import promote_version

    version, stage = ask.verdict.version, ask.verdict.stage
    assert version is not None and stage is not None
    earlier = _done_by_this_comment(ask, stage.alias)
    if earlier is not None:
        return _Done("already", f"already done by this comment: v{earlier} was moved to {stage.alias}.")
    promotion, results = promote_version(ask.project, version.version, stage.alias, _mover(ask))
    outcome = {"promoted": "done", "already_champion": "already"}.get(promotion.outcome, "refused")
    deployed = f" Deployed to {len(results)} target(s)." if results else ""
    return _Done(outcome, f"{promotion.reason}.{deployed}")


def _rollback(ask: _Ask) -> _Done:
    from .rollback import rollback_stage

    stage = ask.verdict.stage
    assert stage is not None
    earlier = _done_by_this_comment(ask, stage.alias)
    if earlier is not None:
        return _Done("already", f"already done by this comment: {stage.alias} was rolled back to v{earlier}.")
    reason = f"/mlops-bot rollback by {ask.comment.author}"
    restored, replaced = rollback_stage(ask.project, stage.alias, _mover(ask), reason)
    if replaced is None:
        return _Done("already", f"v{restored.version} already holds {stage.alias}; nothing was rolled back.")
    return _Done("done", f"rolled {stage.alias} back to v{restored.version} (v{replaced} taken out of service).")


def _rerun(ask: _Ask) -> _Done:
    from ..forges.base import CheckRunning, NoCheckRun

    discussion = ask.verdict.discussion
    assert discussion is not None
    sha = discussion.head_sha
    if ask.mode == "after-check":
        return _Done("done", "")  # the check itself updated the sticky comment and the status
    if ask.mode == "workflow":
        return _Done("pending", f"running this pull request's check again on {sha[:12]}; the report comment will "
                                "update when it is done.", ref=sha)
    # serve: the forge's CI runs the check again (a re-run of GitHub's workflow run, a GitLab merge request
    # pipeline); the bot never runs the pull request's code. A fork's pull request was refused before this.
    try:
        url = ask.forge.rerun_check(discussion.number, sha)
    except CheckRunning as running:
        return _Done("already", f"the check of {sha[:12]} is still running; its report will update when it is "
                                "done. Ask again once it finished if it should run once more.", link=running.url)
    except NoCheckRun as none:
        return _Done("unavailable", f"{none.detail}.")
    return _Done("done", f"started this pull request's check again on {sha[:12]}; its report will update when it "
                         "is done.", link=url)


def _compare(ask: _Ask) -> _Done:
    from ..report.markdown import render_markdown
    from .compare import commit_run, compare_against

    discussion, version = ask.verdict.discussion, ask.verdict.version
    assert discussion is not None and version is not None
    config, registry, sha = ask.project.config, ask.project.registry, discussion.head_sha
    run_id = commit_run(config, registry, sha)
    if run_id is None and ask.mode == "workflow":
        return _Done("pending", f"no finished run of {sha[:12]} yet: running this pull request's check first, "
                                f"then comparing it with v{version.version}.", ref=sha)
    if run_id is None:
        return _Done("unavailable", f"there is no finished run of this pull request's head commit {sha[:12]} on the "
                                    "tracking server yet; wait for its check (or comment /mlops-bot rerun) and ask "
                                    "again.")
    decision = compare_against(config, registry, run_id, version.version)
    report = render_markdown(decision, history=0, chart=False)
    return _Done("done", f"compared this pull request's run {run_id} with v{version.version} (not rescored): "
                         f"{decision.verdict}: {decision.summary}", report=report)


_ACTS = {"approve": _approve, "promote": _promote, "rollback": _rollback, "rerun": _rerun, "compare": _compare}
