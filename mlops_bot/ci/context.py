"""Who called us: GitHub Actions, GitLab CI or a person at a terminal, and what the event asks for.

`read_context(env)` reads the CI's variables (and, on GitHub, the event payload at GITHUB_EVENT_PATH) into a
frozen CIContext whose `flow` says what `mlops-bot ci` should do: `check` a pull/merge request, `promote`
after a push to the default branch, `gate` a tag or release, or `none` (with the reason as a notice).
The token itself never enters the context, only whether one is there.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..errors import UsageError

FLOWS = ("check", "promote", "gate", "none")
GITHUB_TOKEN_VARS = ("GITHUB_TOKEN", "GH_TOKEN")
# A project/personal access token first: CI_JOB_TOKEN may not write notes or statuses.
GITLAB_TOKEN_VARS = ("GITLAB_TOKEN", "CI_JOB_TOKEN")
_PR_EVENTS = ("pull_request", "pull_request_target")
_RELEASE_ACTIONS = ("published", "released", "prereleased")


@dataclass(frozen=True)
class CIContext:
    platform: str  # github | gitlab | local
    event: str  # the platform's own name: pull_request, push, merge_request_event, ... ("local" outside CI)
    flow: str  # one of FLOWS
    reason: str  # one sentence: why this flow (the notice to print when it is "none")
    repository: str = ""  # owner/name on GitHub, the project path on GitLab
    project_id: str = ""  # GitLab's project id
    sha: str = ""  # the commit to report on: a PR's head commit, never GitHub's test merge commit
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
    if env.get("GITHUB_ACTIONS") == "true":
        return _github(env)
    if env.get("GITLAB_CI") == "true":
        return _gitlab(env)
    return CIContext(platform="local", event="local", flow="check", sha=env.get("MLOPS_BOT_SHA", ""),
                     reason="not running in GitHub Actions or GitLab CI: the check writes its report to a file")


def token_of(platform: str, env: Mapping[str, str]) -> tuple[str, str]:
    """(variable name, token) of the first token variable set for `platform`; ("", "") when none is."""
    names = GITHUB_TOKEN_VARS if platform == "github" else GITLAB_TOKEN_VARS if platform == "gitlab" else ()
    return next(((name, env[name]) for name in names if env.get(name, "").strip()), ("", ""))


# GitHub Actions


def _github(env: Mapping[str, str]) -> CIContext:
    event = env.get("GITHUB_EVENT_NAME", "")
    if not event:
        raise UsageError("GITHUB_EVENT_NAME is not set although GITHUB_ACTIONS=true; run mlops-bot as a step "
                         "of a GitHub Actions job, or unset GITHUB_ACTIONS to run locally.")
    payload = load_event(env.get("GITHUB_EVENT_PATH", ""))
    repo = env.get("GITHUB_REPOSITORY") or str(_dig(payload, "repository.full_name", default=""))
    server = env.get("GITHUB_SERVER_URL", "https://github.com").rstrip("/")
    run_id = env.get("GITHUB_RUN_ID", "")
    base = CIContext(
        platform="github", event=event, flow="none", reason="", repository=repo, sha=env.get("GITHUB_SHA", ""),
        ref=env.get("GITHUB_REF", ""), api_url=env.get("GITHUB_API_URL", "https://api.github.com").rstrip("/"),
        server_url=server, run_url=f"{server}/{repo}/actions/runs/{run_id}" if run_id and repo else "",
        default_branch=str(_dig(payload, "repository.default_branch", default="")),
        workflow=_workflow_file(env.get("GITHUB_WORKFLOW_REF", "")), actor=env.get("GITHUB_ACTOR", ""),
        token_present=bool(token_of("github", env)[0]),
    )
    return _github_flow(base, payload, env.get("GITHUB_EVENT_PATH", ""))


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
        if wanted in FLOWS:
            return replace(chosen, flow=wanted, reason=f"the workflow was dispatched with flow={wanted}.")
        return _by_ref(chosen)
    if event == "workflow_run":
        return _github_workflow_run(base, payload)
    return replace(base, reason=f"the {event!r} event is not one mlops-bot handles (pull_request, push, release, "
                   "workflow_dispatch, schedule): nothing to do.")


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
    number = _dig(payload, "pull_request.number", path)
    head_repo = _dig(payload, "pull_request.head.repo", path, default=None)
    base_repo = str(_dig(payload, "pull_request.base.repo.full_name", path, default=base.repository))
    context = replace(
        base, pr_number=int(number), sha=str(_dig(payload, "pull_request.head.sha", path)),
        branch=str(_dig(payload, "pull_request.head.ref", path, default="")),
        base_branch=str(_dig(payload, "pull_request.base.ref", path, default="")),
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
    tag = str(_dig(payload, "release.tag_name", default=""))
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


def load_event(path: str) -> dict[str, Any]:
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


_MISSING = object()


def _dig(payload: Mapping[str, Any], dotted: str, path: str = "", default: Any = _MISSING) -> Any:
    node: Any = payload
    for key in dotted.split("."):
        if not isinstance(node, Mapping) or node.get(key) is None:
            if default is not _MISSING:
                return default
            raise UsageError(f"{path or 'the event file'}: the payload has no {dotted}; is GITHUB_EVENT_NAME right "
                             "for this payload?")
        node = node[key]
    return node


def _workflow_file(workflow_ref: str) -> str:
    # owner/repo/.github/workflows/ci.yml@refs/heads/main -> ci.yml
    path = workflow_ref.split("@", 1)[0]
    return path.rsplit("/", 1)[-1] if "/.github/workflows/" in path else ""


# GitLab CI


def _gitlab(env: Mapping[str, str]) -> CIContext:
    source = env.get("CI_PIPELINE_SOURCE", "")
    server = env.get("CI_SERVER_URL", "").rstrip("/")
    base = CIContext(
        platform="gitlab", event=source or "unknown", flow="none", reason="",
        repository=env.get("CI_PROJECT_PATH", ""), project_id=env.get("CI_PROJECT_ID", ""),
        sha=env.get("CI_COMMIT_SHA", ""), ref=env.get("CI_COMMIT_REF_NAME", ""),
        default_branch=env.get("CI_DEFAULT_BRANCH", ""), api_url=env.get("CI_API_V4_URL", "").rstrip("/")
        or (f"{server}/api/v4" if server else ""), server_url=server,
        run_url=env.get("CI_PIPELINE_URL", "") or env.get("CI_JOB_URL", ""),
        actor=env.get("GITLAB_USER_LOGIN", ""), token_present=bool(token_of("gitlab", env)[0]),
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
