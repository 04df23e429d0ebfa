"""Approvals the forge holds: a deployment environment's reviewers, or an approving pull request review, each
from someone whose repository role is at least the stage's `approval.permission` (checked through the API); and an
approval on record confirmed there before it counts (flows/approval_confirm).

Who approved and what role they hold are read from the forge when the stage is asked for, never from an
environment variable, a comment or the version's tags: the tags only say which pull request to look at, and an
approval tag only which comment, review or run to read again. Where no forge is reachable (a terminal outside CI
without MLOPS_BOT_FORGE) the record is trusted as it is: whoever runs the bot there holds the registry's write
access already, so they could move the alias by hand; there is no forge whose answer could say otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from ..config.model import ApprovalRule, Stage, role_at_least
from ..console import log
from ..lifecycle.approvals import Approval, Via
from ..lifecycle.stages import StageRefused, check_approval
from ..registry import tags
from ..registry.base import ModelVersion
from .approval_confirm import RUN_PAGE, granted, unconfirmed
from .project import Project

if TYPE_CHECKING:
    from ..forges.base import Approver, Forge


def forge_approval(project: Project, version: ModelVersion, stage: Stage) -> Approval | None:
    """The approval the forge holds for `version` to reach `stage`: the one on record once the forge confirms it,
    else the first found now by the mechanisms in stage.approval.via other than "comment" (ChatOps approvals are
    recorded when the comment is handled). None when there is none, or no forge to ask (the record then decides
    alone, see the module doc). StageRefused, naming what did not match, when the record is not confirmed and the
    forge holds no other approval."""
    rule = stage.approval
    record = _on_record(version, stage) if rule is not None else None
    if rule is None or (record is None and not {"environment", "review"} & set(rule.via)):
        return None  # nothing to confirm, and ChatOps approvals are recorded when their comment is handled
    forge = _open(project)
    if forge is None:
        return None  # no forge outside CI: an approval is given with a ChatOps comment or on the forge itself
    check = _RoleCheck(forge, rule, stage.alias)
    doubt = unconfirmed(forge, check.role, version, stage, record) if record is not None else ""
    if record is not None and not doubt and record.via == "environment":
        doubt = _another_run(project, record)
    if record is not None and not doubt:
        return record
    found = _found(project, forge, check, version, stage)
    if found is None and record is not None:
        raise StageRefused(f"v{version.version} needs approval for {stage.alias}: the approval on record (by "
                           f"{record.by} via {record.via}, {record.where}) is not confirmed by {forge.name}: {doubt}; "
                           "approve again")
    return found


def _another_run(project: Project, record: Approval) -> str:
    """Why an environment approval on record does not count in this workflow run ("" when it does): GitHub asks the
    environment's reviewers for every run, so a review of another run (perhaps of another version) says nothing
    about this one. Outside a GitHub Actions run there is no run to compare with."""
    current = project.env.get("GITHUB_RUN_ID", "").strip()
    found = RUN_PAGE.search(record.where)
    if not current or found is None or found["id"] == current:
        return ""
    return f"that deployment review was given to workflow run {found['id']}, not to this run ({current})"


def _on_record(version: ModelVersion, stage: Stage) -> Approval | None:
    """The approval on record that meets the stage's rule (permission, mechanism); None when there is none."""
    try:
        return check_approval(version, stage)
    except StageRefused:
        return None


def _found(project: Project, forge: Forge, check: _RoleCheck, version: ModelVersion, stage: Stage
           ) -> Approval | None:
    rule = stage.approval
    assert rule is not None
    run_id = project.env.get("GITHUB_RUN_ID", "").strip()
    if "environment" in rule.via and forge.name == "GitHub" and run_id:
        environment = rule.environment or stage.alias
        with granted(forge.name, "environment"):
            approvers = forge.environment_approvers(run_id, environment)
        approval = check.first(approvers, "environment")
        if approval is not None:
            return approval
    number = version.tags.get(tags.PULL_REQUEST, "").strip()
    if "review" in rule.via and number.isdigit():
        with granted(forge.name, "review"):
            approvers = forge.approvers(int(number))
        return check.first(approvers, "review")
    return None


class _RoleCheck:
    """Each approver's role asked once; those below the stage's permission are named in the log, not counted."""

    def __init__(self, forge: Forge, rule: ApprovalRule, alias: str) -> None:
        self._forge, self._rule, self._alias = forge, rule, alias
        self._roles: dict[str, str] = {}

    def first(self, approvers: list[Approver], via: Via) -> Approval | None:
        for approver in approvers:
            role = self.role(approver.login)
            if role_at_least(role, self._rule.permission):
                return Approval(approver.login, via, approver.url, role)
            log(f"mlops-bot: {approver.login} approved ({via}) but has role {role}; {self._alias} needs "
                f"{self._rule.permission}")
        return None

    def role(self, login: str) -> str:
        key = login.lower()
        if key not in self._roles:
            with granted(self._forge.name, "role"):
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
