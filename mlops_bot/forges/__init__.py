"""Forges: where reports go. `open_forge` picks the adapter for the CI context; PyGithub and python-gitlab
are imported only here, when one is opened.

Settings read from the environment besides the tokens: MLOPS_BOT_LOGIN (the account the bot posts as, e.g.
`my-app[bot]` for a GitHub App token; found by itself for GITHUB_TOKEN and personal tokens),
MLOPS_BOT_RETRY_SECONDS (the time budget of one request's retries, default 120) and
MLOPS_BOT_WRITE_INTERVAL (seconds between writes to GitHub, default 1, as GitHub's rate-limit guide asks).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TextIO

from ..ci.context import CIContext, token_of
from ..errors import UsageError
from ..support.state import state_path
from .base import CommentResult, Forge, PermissionDenied, is_degradable

__all__ = ["CommentResult", "Forge", "PermissionDenied", "is_degradable", "open_forge"]


def open_forge(context: CIContext, env: Mapping[str, str], *, root: Path = Path("."),
               stream: TextIO | None = None) -> Forge:
    """The forge for `context`; a UsageError when the CI gave no token. `stream` is where the local forge
    prints its report (stdout by default)."""
    if context.platform == "github":
        return _github(context, env)
    if context.platform == "gitlab":
        return _gitlab(context, env)
    from .local import LocalForge

    return LocalForge(state_path(root), stream)


def _github(context: CIContext, env: Mapping[str, str]) -> Forge:
    _, token = token_of("github", env)
    if not token:
        raise UsageError("GitHub: no token; pass one to the step (env: GITHUB_TOKEN: ${{ github.token }}) and grant "
                         "the job `pull-requests: write` and `statuses: write` permissions.")
    from .github import GitHubForge, GitHubSettings

    settings = GitHubSettings(api_url=context.api_url, repository=context.repository, number=context.pr_number,
                              login=env.get("MLOPS_BOT_LOGIN", ""), workflow=context.workflow,
                              budget=_seconds(env, "MLOPS_BOT_RETRY_SECONDS", 120.0),
                              write_interval=_seconds(env, "MLOPS_BOT_WRITE_INTERVAL", 1.0))
    return GitHubForge(settings, token)


def _gitlab(context: CIContext, env: Mapping[str, str]) -> Forge:
    name, token = token_of("gitlab", env)
    if not token:
        raise UsageError("GitLab: no token; set GITLAB_TOKEN to a project access token with api scope (a masked "
                         "CI/CD variable), or rely on CI_JOB_TOKEN for what it may do.")
    from .gitlab import GitLabForge, GitLabSettings

    job_token = name == "CI_JOB_TOKEN"
    # Whatever a job token writes is attributed to the user who started the pipeline.
    login = env.get("MLOPS_BOT_LOGIN", "") or (env.get("GITLAB_USER_LOGIN", "") if job_token else "")
    budget = _seconds(env, "MLOPS_BOT_RETRY_SECONDS", 120.0)
    settings = GitLabSettings(server_url=context.server_url, project=context.project_id or context.repository,
                              project_path=context.repository, mr_iid=context.pr_number, login=login,
                              wait_cap=max(1.0, budget / 6))
    return GitLabForge(settings, token, job_token=job_token)


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise UsageError(f"{name}={raw!r} is not a number of seconds; set it to e.g. {default:g}.") from None
    if value < 0:
        raise UsageError(f"{name}={raw!r} is negative; set it to a number of seconds >= 0.")
    return value
