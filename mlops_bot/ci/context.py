"""Who called us: GitHub Actions, GitLab CI or a person at a terminal, and what the event asks for.

`read_context(env)` reads the CI's variables (and, on GitHub, the event payload at GITHUB_EVENT_PATH) into a
frozen CIContext whose `flow` says what `mlops-bot ci` should do: `check` a pull/merge request, `promote`
after a push to the default branch, `gate` a tag or release, or `none` (with the reason as a notice).
The token itself never enters the context, only whether one is there.

`read_forge_context(env, reason=...)` locates a forge from the same variables, with the same defaults, for work
outside CI (an `on:` rule's retrain under `serve`); MLOPS_BOT_FORGE=github|gitlab names the forge, and
MLOPS_BOT_FORGE=local the local stand-in (a laptop: what would be posted or started is recorded).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal, TypeGuard, get_args

from ..errors import UsageError
from .payload import dig, load_payload, workflow_file

Platform = Literal["github", "gitlab", "local"]
Flow = Literal["check", "promote", "gate", "none"]  # what `mlops-bot ci` runs
FLOWS: tuple[Flow, ...] = get_args(Flow)
GITHUB_TOKEN_VARS = ("GITHUB_TOKEN", "GH_TOKEN")
# A project/personal access token first: CI_JOB_TOKEN may not write notes or statuses.
GITLAB_TOKEN_VARS = ("GITLAB_TOKEN", "CI_JOB_TOKEN")
GITHUB_SERVER = "https://github.com"
GITHUB_API = "https://api.github.com"
GITLAB_SERVER = "https://gitlab.com"  # outside CI only: a GitLab job always sets CI_SERVER_URL
FORGE_VAR = "MLOPS_BOT_FORGE"
_PR_EVENTS = ("pull_request", "pull_request_target")
_RELEASE_ACTIONS = ("published", "released", "prereleased")


@dataclass(frozen=True)
class CIContext:
    platform: Platform
    event: str  # the platform's own name: pull_request, push, merge_request_event, ... ("local" outside CI)
    flow: Flow
    reason: str  # one sentence: why this flow (the notice to print when it is "none")
    repository: str = ""  # owner/name on GitHub, the project path on GitLab
    project_id: str = ""  # GitLab's project id
    sha: str = ""  # the commit to report on: a PR's head commit, never GitHub's test merge commit
    previous_sha: str = ""  # the PR's head before this push (GitHub's `before` on synchronize), else empty
    ref: str = ""
    branch: str = ""  # the pushed branch, or the PR/MR's source branch
    tag: str = ""
    pr_number: int | None = None  # PR number or MR iid
    base_branch: str = ""  # the PR/MR's target branch
    default_branch: str = ""
    fork: bool = False  # the PR/MR comes from another repository: its token may be read-only
    api_url: str = ""
    server_url: str = ""
    run_url: str = ""  # the CI run/pipeline, for status target URLs
    workflow: str = ""  # GitHub: the running workflow's file (for workflow_dispatch)
    actor: str = ""
    token_present: bool = False
    inputs: Mapping[str, str] = field(default_factory=dict)

    @property
    def in_ci(self) -> bool:
        return self.platform != "local"


def read_context(env: Mapping[str, str]) -> CIContext:
    """The context of the CI job running us, or the local one outside CI."""
    if env.get("GITHUB_ACTIONS") == "true":
        return _github(env)
    if env.get("GITLAB_CI") == "true":
        return _gitlab(env)
    return CIContext(platform="local", event="local", flow="check", sha=env.get("MLOPS_BOT_SHA", ""),
                     reason="not running in GitHub Actions or GitLab CI: the check writes its report to a file")


def read_forge_context(env: Mapping[str, str], *, reason: str) -> CIContext:
    """The forge MLOPS_BOT_FORGE names, located as `read_context` would (GITHUB_REPOSITORY, GITHUB_API_URL,
    GITHUB_SERVER_URL; or CI_SERVER_URL, defaulting to gitlab.com here, CI_API_V4_URL, CI_PROJECT_ID,
    CI_PROJECT_PATH, CI_DEFAULT_BRANCH). Flow "none"; `reason` says what the work is, for messages."""
    forge = env.get(FORGE_VAR, "").strip().lower()
    if forge == "local":  # no forge: the local stand-in records what it was asked (forges/local.py)
        return CIContext(platform="local", event="local", flow="none", reason=reason)
    if forge == "github":
        return _github_base(env, "mlops-bot", reason)
    if forge == "gitlab":
        return _gitlab_base(env, "mlops-bot", reason, GITLAB_SERVER)
    given = f" ({FORGE_VAR} is {env[FORGE_VAR]!r})" if env.get(FORGE_VAR, "").strip() else ""
    raise UsageError(f"{reason} outside CI: set {FORGE_VAR}=github (with GITHUB_REPOSITORY and GITHUB_TOKEN) or "
                     f"{FORGE_VAR}=gitlab (with CI_SERVER_URL, CI_PROJECT_ID, CI_PROJECT_PATH and GITLAB_TOKEN) to "
                     f"say which forge to use, or {FORGE_VAR}=local to record the request in the state "
                     f"directory{given}.")


def token_of(platform: Platform, env: Mapping[str, str]) -> tuple[str, str]:
    """(variable name, token) of the first token variable set for `platform`; ("", "") when none is."""
    names = GITHUB_TOKEN_VARS if platform == "github" else GITLAB_TOKEN_VARS if platform == "gitlab" else ()
    return next(((name, env[name]) for name in names if env.get(name, "").strip()), ("", ""))


def _is_flow(value: object) -> TypeGuard[Flow]:
    """True for the names of FLOWS (a workflow_dispatch input is anybody's text)."""
    return value in FLOWS


# GitHub Actions


def _github_base(env: Mapping[str, str], event: str, reason: str) -> CIContext:
    """What GitHub's variables say in and out of Actions: the repository, the server, the API, the token."""
    return CIContext(
        platform="github", event=event, flow="none", reason=reason, repository=env.get("GITHUB_REPOSITORY", ""),
        server_url=(env.get("GITHUB_SERVER_URL") or GITHUB_SERVER).rstrip("/"),
        api_url=(env.get("GITHUB_API_URL") or GITHUB_API).rstrip("/"), token_present=bool(token_of("github", env)[0]),
    )


def _github(env: Mapping[str, str]) -> CIContext:
    event = env.get("GITHUB_EVENT_NAME", "")
    if not event:
        raise UsageError("GITHUB_EVENT_NAME is not set although GITHUB_ACTIONS=true; run mlops-bot as a step "
                         "of a GitHub Actions job, or unset GITHUB_ACTIONS to run locally.")
    payload = load_payload(env.get("GITHUB_EVENT_PATH", ""))
    common = _github_base(env, event, "")
    repo = common.repository or str(dig(payload, "repository.full_name", default=""))
    run_id = env.get("GITHUB_RUN_ID", "")
    base = replace(
        common, repository=repo, sha=env.get("GITHUB_SHA", ""), ref=env.get("GITHUB_REF", ""),
        run_url=f"{common.server_url}/{repo}/actions/runs/{run_id}" if run_id and repo else "",
        default_branch=str(dig(payload, "repository.default_branch", default="")),
        workflow=workflow_file(env.get("GITHUB_WORKFLOW_REF", "")), actor=env.get("GITHUB_ACTOR", ""),
    )
    if event == "issue_comment":
        return _github_comment(base, payload, env.get("MLOPS_BOT_SHA", ""))
    return _github_flow(base, payload, env.get("GITHUB_EVENT_PATH", ""))


def _github_comment(base: CIContext, payload: Mapping[str, Any], sha: str) -> CIContext:
    """A comment: `mlops-bot chatops` answers it. On a pull request the number is issue.number (GitHub sends
    pull request comments as issue comments, marked by issue.pull_request). The payload names no head commit:
    the workflow's check after a ChatOps command gets it from `chatops` (which asked the API and found a
    same-repository pull request) as MLOPS_BOT_SHA, and only then is this a `check`."""
    number = dig(payload, "issue.number", default=None)
    on_pull_request = isinstance(dig(payload, "issue.pull_request", default=None), Mapping)
    context = replace(base, pr_number=int(number) if on_pull_request and isinstance(number, int) else None,
                      reason="an issue comment: `mlops-bot chatops` answers the /mlops-bot commands in it.")
    if context.pr_number is None or not re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}", sha):
        return context
    return replace(context, flow="check", sha=sha, reason=f"pull request #{context.pr_number}: checked again on "
                   f"{sha[:12]} for a ChatOps command.")


def _github_flow(base: CIContext, payload: Mapping[str, Any], path: str) -> CIContext:
    event = base.event
    if event in _PR_EVENTS:
        return _github_pull_request(base, payload, path)
    if event == "push":
        if payload.get("deleted"):
            return replace(base, ref=str(payload.get("ref", base.ref)), reason=f"{base.ref or 'a ref'} was "
                           "deleted: nothing to check, promote or gate.")
        return _by_ref(replace(base, ref=str(payload.get("ref") or base.ref),
                               sha=base.sha or str(payload.get("after", ""))))
    if event == "release":
        return _github_release(base, payload)
    if event in ("workflow_dispatch", "schedule"):
        inputs = {str(k): str(v) for k, v in (payload.get("inputs") or {}).items()}
        chosen = replace(base, ref=str(payload.get("ref") or base.ref), inputs=inputs)
        wanted = inputs.get("flow", "")
        if _is_flow(wanted):
            return replace(chosen, flow=wanted, reason=f"the workflow was dispatched with flow={wanted}.")
        return _by_ref(chosen)
    if event == "workflow_run":
        return _github_workflow_run(base, payload)
    return replace(base, reason=f"the {event!r} event is not one mlops-bot handles (pull_request, push, release, "
                   "workflow_dispatch, schedule, issue_comment): nothing to do.")


def _github_workflow_run(base: CIContext, payload: Mapping[str, Any]) -> CIContext:
    """A follow-up job (the two-workflow pattern for forks): nothing to run, but `report` can post for the PR.
    GitHub lists no pull requests here for a fork's run; `report --pr N` gives the number then."""
    found = payload.get("workflow_run")
    run: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    prs = [p for p in (run.get("pull_requests") or []) if isinstance(p, Mapping) and p.get("number")]
    return replace(base, sha=str(run.get("head_sha") or base.sha), branch=str(run.get("head_branch") or ""),
                   pr_number=int(prs[0]["number"]) if prs else None,
                   reason="workflow_run is a follow-up job: post the triggering run's report with `mlops-bot report`.")


def _github_pull_request(base: CIContext, payload: Mapping[str, Any], path: str) -> CIContext:
    number = dig(payload, "pull_request.number", path)
    head_repo = dig(payload, "pull_request.head.repo", path, default=None)
    base_repo = str(dig(payload, "pull_request.base.repo.full_name", path, default=base.repository))
    context = replace(
        base, pr_number=int(number), sha=str(dig(payload, "pull_request.head.sha", path)),
        previous_sha=str(payload.get("before") or ""),  # synchronize only: where the bot's last status is
        branch=str(dig(payload, "pull_request.head.ref", path, default="")),
        base_branch=str(dig(payload, "pull_request.base.ref", path, default="")),
        # A deleted fork leaves head.repo null; it was a fork all the same.
        fork=not isinstance(head_repo, Mapping) or head_repo.get("full_name") != base_repo,
    )
    if base.event == "pull_request_target":
        return replace(context, reason="pull_request_target runs with the base repository's write token, so "
                       "running the PR's training code there is unsafe: use pull_request (and a workflow_run job "
                       "to post reports for forks).")
    if payload.get("action") == "closed":
        return replace(context, reason=f"pull request #{number} was closed: the merge's push runs the promote flow.")
    return replace(context, flow="check", reason=f"pull request #{number} ({payload.get('action', 'event')}).")


def _github_release(base: CIContext, payload: Mapping[str, Any]) -> CIContext:
    tag = str(dig(payload, "release.tag_name", default=""))
    action = str(payload.get("action", ""))
    context = replace(base, tag=tag, ref=f"refs/tags/{tag}" if tag else base.ref)
    if action in _RELEASE_ACTIONS:
        return replace(context, flow="gate", reason=f"release {tag} was {action}: the release gate decides.")
    return replace(context, reason=f"release {tag} was {action or 'changed'}: only published releases are gated.")


def _by_ref(context: CIContext) -> CIContext:
    """Push-like events: the default branch promotes, a tag is gated, any other branch needs nothing."""
    ref = context.ref
    if ref.startswith("refs/tags/"):
        tag = ref.removeprefix("refs/tags/")
        return replace(context, tag=tag, flow="gate", reason=f"tag {tag}: the release gate decides.")
    branch = ref.removeprefix("refs/heads/")
    context = replace(context, branch=branch)
    if branch and context.default_branch in ("", branch):
        # schedule payloads carry no repository; their ref is the default branch by definition.
        return replace(context, flow="promote", reason=f"{context.event} on the default branch {branch}.")
    return replace(context, reason=f"{context.event} on branch {branch or ref!r}, not the default branch "
                   f"{context.default_branch}: nothing to do (pull requests are checked on pull_request).")


# GitLab CI


def _gitlab_base(env: Mapping[str, str], event: str, reason: str, server: str = "") -> CIContext:
    """What GitLab's predefined variables say in and out of CI: the project, the server, the API, the token.
    `server` stands in for an unset CI_SERVER_URL; the API is CI_API_V4_URL, else derived from the server."""
    server = (env.get("CI_SERVER_URL") or server).rstrip("/")
    return CIContext(
        platform="gitlab", event=event, flow="none", reason=reason, repository=env.get("CI_PROJECT_PATH", ""),
        project_id=env.get("CI_PROJECT_ID", ""), default_branch=env.get("CI_DEFAULT_BRANCH", ""), server_url=server,
        api_url=env.get("CI_API_V4_URL", "").rstrip("/") or (f"{server}/api/v4" if server else ""),
        token_present=bool(token_of("gitlab", env)[0]),
    )


def _gitlab(env: Mapping[str, str]) -> CIContext:
    source = env.get("CI_PIPELINE_SOURCE", "")
    base = replace(
        _gitlab_base(env, source or "unknown", ""), sha=env.get("CI_COMMIT_SHA", ""),
        ref=env.get("CI_COMMIT_REF_NAME", ""), run_url=env.get("CI_PIPELINE_URL", "") or env.get("CI_JOB_URL", ""),
        actor=env.get("GITLAB_USER_LOGIN", ""),
    )
    if not base.server_url:
        raise UsageError("CI_SERVER_URL is not set although GITLAB_CI=true; run mlops-bot inside a GitLab CI job, "
                         "or unset GITLAB_CI to run locally.")
    if source == "merge_request_event":
        return _gitlab_merge_request(base, env)
    tag, branch = env.get("CI_COMMIT_TAG", ""), env.get("CI_COMMIT_BRANCH", "")
    if tag:
        return replace(base, tag=tag, ref=f"refs/tags/{tag}", flow="gate", reason=f"tag {tag}: the release gate "
                       "decides.")
    return _by_ref(replace(base, ref=f"refs/heads/{branch}" if branch else base.ref))


def _gitlab_merge_request(base: CIContext, env: Mapping[str, str]) -> CIContext:
    iid = env.get("CI_MERGE_REQUEST_IID", "")
    if not iid.isdigit():
        raise UsageError("CI_PIPELINE_SOURCE is merge_request_event but CI_MERGE_REQUEST_IID is not set; run the "
                         "job in a merge request pipeline (rules: if: $CI_PIPELINE_SOURCE == 'merge_request_event').")
    source_project = env.get("CI_MERGE_REQUEST_SOURCE_PROJECT_ID", "")
    return replace(
        base, flow="check", pr_number=int(iid), reason=f"merge request !{iid}.",
        # In merged-results pipelines CI_COMMIT_SHA is the merge commit; the head is the source branch's sha.
        sha=env.get("CI_MERGE_REQUEST_SOURCE_BRANCH_SHA") or base.sha,
        branch=env.get("CI_MERGE_REQUEST_SOURCE_BRANCH_NAME", ""),
        base_branch=env.get("CI_MERGE_REQUEST_TARGET_BRANCH_NAME", ""),
        fork=bool(source_project) and source_project != env.get("CI_MERGE_REQUEST_PROJECT_ID", base.project_id),
    )
