"""Approvals the forge holds: a deployment environment's reviewers, or an approving pull request review, each
from someone whose repository role is at least the stage's `approval.permission` (checked through the API).

Who approved and what role they hold are read from the forge when the stage is asked for, never from an
environment variable, a comment or the version's tags: the tags only say which pull request to look at.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

from ..config.model import ApprovalRule, Stage, role_at_least
from ..console import log
from ..errors import UsageError
from ..lifecycle.approvals import Approval, Via
from ..registry import tags
from ..registry.base import ModelVersion
from .project import Project

if TYPE_CHECKING:
    from ..forges.base import Approver, Forge

# What each read needs, by forge, for the message when the token is refused (HTTP 403).
_GRANTS = {
    ("GitHub", "environment"): "`actions: read` (the workflow's `permissions:`) to read the run's deployment reviews",
    ("GitHub", "review"): "`pull-requests: read` to read the pull request's reviews",
    ("GitHub", "role"): "`metadata: read` (a personal access token (classic): push access to the repository) to "
                        "read a collaborator's permission",
    ("GitLab", "review"): "a GITLAB_TOKEN with the read_api scope and the Reporter role to read the merge request's "
                          "approvals",
    ("GitLab", "role"): "a GITLAB_TOKEN with the read_api scope to read the project's members",
}


def forge_approval(project: Project, version: ModelVersion, stage: Stage) -> Approval | None:
    """The first approval the forge holds for `version` to reach `stage`, by the mechanisms in stage.approval.via
    other than "comment" (ChatOps approvals are recorded when the comment is handled); None when there is none."""
    rule = stage.approval
    if rule is None or not {"environment", "review"} & set(rule.via):
        return None
    forge = _open(project)
    if forge is None:
        return None  # no forge outside CI: an approval is given with a ChatOps comment or on the forge itself
    check = _RoleCheck(forge, rule, stage.alias)
    run_id = project.env.get("GITHUB_RUN_ID", "").strip()
    if "environment" in rule.via and forge.name == "GitHub" and run_id:
        environment = rule.environment or stage.alias
        with _granted(forge.name, "environment"):
            found = forge.environment_approvers(run_id, environment)
        approval = check.first(found, "environment")
        if approval is not None:
            return approval
    number = version.tags.get(tags.PULL_REQUEST, "").strip()
    if "review" in rule.via and number.isdigit():
        with _granted(forge.name, "review"):
            found = forge.approvers(int(number))
        return check.first(found, "review")
    return None


class _RoleCheck:
    """Each approver's role asked once; those below the stage's permission are named in the log, not counted."""

    def __init__(self, forge: Forge, rule: ApprovalRule, alias: str) -> None:
        self._forge, self._rule, self._alias = forge, rule, alias
        self._roles: dict[str, str] = {}

    def first(self, approvers: list[Approver], via: Via) -> Approval | None:
        for approver in approvers:
            role = self._role(approver.login)
            if role_at_least(role, self._rule.permission):
                return Approval(approver.login, via, approver.url, role)
            log(f"mlops-bot: {approver.login} approved ({via}) but has role {role}; {self._alias} needs "
                f"{self._rule.permission}")
        return None

    def _role(self, login: str) -> str:
        key = login.lower()
        if key not in self._roles:
            with _granted(self._forge.name, "role"):
                self._roles[key] = self._forge.role_of(login)
        return self._roles[key]


def _open(project: Project) -> Forge | None:
    from ..ci.context import FORGE_VAR, read_context, read_forge_context
    from ..forges import open_forge

    env: Mapping[str, str] = project.env
    context = read_context(env)
    if not context.in_ci and env.get(FORGE_VAR, "").strip().lower() in ("github", "gitlab"):
        context = read_forge_context(env, reason="checking a stage's approval")
    if not context.in_ci:
        return None
    return open_forge(context, env, root=project.directory)


@contextlib.contextmanager
def _granted(forge: str, read: str) -> Iterator[None]:
    """A 403 on a read the approval needs is a setup problem, said as such: which permission the token lacks."""
    from ..forges.base import PermissionDenied

    try:
        yield
    except PermissionDenied as exc:
        grant = _GRANTS.get((forge, read), "read access to the repository")
        raise UsageError(f"{exc.service}: HTTP {exc.status} from {exc.url}: the token may not read what the "
                         f"approval needs; grant it {grant}, then run again.") from None
