"""An approval on record, confirmed against the forge before it counts.

The tag `mlops_bot.approval.<alias>` is written by the bot once the forge vouched for the approver, but anybody
with write access to the registry can write it too. So where a forge is reachable, the record is only a pointer:
the comment it names is read again (its author, its command, in this repository), the review or the deployment
review is looked up again, and the approver's role is asked again. What the forge does not confirm is said, so
the refusal can name it. Each read that the token may not make is a setup problem (`granted`), said as such.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from ..chatops.command import find_command
from ..config.model import Stage, role_at_least
from ..errors import NotFound, UsageError
from ..lifecycle.approvals import Approval
from ..registry import tags
from ..registry.base import ModelVersion

if TYPE_CHECKING:
    from ..forges.base import Forge

RoleOf = Callable[[str], str]  # a login's repository role, asked of the forge (once per login)

# What each read needs, by forge, for the message when the token is refused (HTTP 403).
_GRANTS = {
    ("GitHub", "environment"): "`actions: read` (the workflow's `permissions:`) to read the run's deployment reviews",
    ("GitHub", "review"): "`pull-requests: read` to read the pull request's reviews",
    ("GitHub", "comment"): "`issues: read` or `pull-requests: read` to read the approval's comment",
    ("GitHub", "role"): "`metadata: read` (a personal access token (classic): push access to the repository) to "
                        "read a collaborator's permission",
    ("GitLab", "review"): "a GITLAB_TOKEN with the read_api scope and the Reporter role to read the merge request's "
                          "approvals",
    ("GitLab", "comment"): "a GITLAB_TOKEN with the read_api scope to read the approval's note",
    ("GitLab", "role"): "a GITLAB_TOKEN with the read_api scope to read the project's members",
}
RUN_PAGE = re.compile(r"/actions/runs/(?P<id>\d+)/?\Z")  # a workflow run's page, where an environment approval points


@contextlib.contextmanager
def granted(forge: str, read: str) -> Iterator[None]:
    """A 403 on a read the approval needs is a setup problem, said as such: which permission the token lacks."""
    from ..forges.base import PermissionDenied

    try:
        yield
    except PermissionDenied as exc:
        grant = _GRANTS.get((forge, read), "read access to the repository")
        raise UsageError(f"{exc.service}: HTTP {exc.status} from {exc.url}: the token may not read what the "
                         f"approval needs; grant it {grant}, then run again.") from None


def unconfirmed(forge: Forge, role_of: RoleOf, version: ModelVersion, stage: Stage, approval: Approval) -> str:
    """Why `forge` does not confirm `approval` of `version` for `stage` ("" when it does): the comment, review or
    deployment review it names still says so, by `approval.by`, whose role is still the stage's permission or
    above."""
    rule = stage.approval
    assert rule is not None  # only a stage that needs an approval has one on record
    check = {"comment": _comment, "review": _review, "environment": _environment}.get(approval.via)
    if check is None:
        return f"{approval.via!r} is no way of approving"
    why = check(forge, version, stage, approval)
    if why:
        return why
    role = role_of(approval.by)
    if not role_at_least(role, rule.permission):
        return f"{approval.by}'s role here is now {role}, and {stage.alias} needs {rule.permission}"
    return ""


def _comment(forge: Forge, version: ModelVersion, stage: Stage, approval: Approval) -> str:
    with granted(forge.name, "comment"):
        found = forge.comment_by_url(approval.where)
    if found is None:
        return (f"{approval.where} is no comment on this repository's pull/merge requests or issues (another "
                "repository's, or deleted)")
    if found.author.lower() != approval.by.lower():
        return f"that comment is by {found.author or 'nobody known'}, not {approval.by}"
    if found.edited:
        # Whoever may write to the repository may edit others' comments on GitHub (maintainers on GitLab): an
        # edited comment no longer shows what its author wrote, as ChatOps acts on new comments only.
        return f"that comment was edited after {approval.by} wrote it; an approval is a new comment"
    command = find_command(found.body)
    wanted = f"/mlops-bot approve v{version.version} {stage.alias}"
    if command is None or (command.verb, command.version, command.stage) != ("approve", version.version, stage.alias):
        said = f"`{command.line}`" if command is not None else "no /mlops-bot command"
        return f"that comment says {said}, not `{wanted}`"
    return ""


def _review(forge: Forge, version: ModelVersion, stage: Stage, approval: Approval) -> str:
    number = version.tags.get(tags.PULL_REQUEST, "").strip()
    if not number.isdigit():
        return f"v{version.version} names no pull request whose reviews could say so"
    try:
        with granted(forge.name, "review"):
            found = forge.approvers(int(number))
    except NotFound:
        return f"pull request #{number} is gone"
    if approval.by.lower() not in {a.login.lower() for a in found}:
        return (f"{approval.by} does not approve pull request #{number} now (the review was withdrawn, dismissed or "
                "never given)")
    return ""


def _environment(forge: Forge, version: ModelVersion, stage: Stage, approval: Approval) -> str:
    rule = stage.approval
    assert rule is not None
    run = RUN_PAGE.search(approval.where)
    if run is None:
        return f"{approval.where} is not a workflow run's page"
    environment = rule.environment or stage.alias
    try:
        with granted(forge.name, "environment"):
            found = forge.environment_approvers(run["id"], environment)
    except NotFound:
        return f"this repository has no workflow run {run['id']}"
    if approval.by.lower() not in {a.login.lower() for a in found}:
        return f"{approval.by} did not approve run {run['id']}'s deployment to the `{environment}` environment"
    return ""
