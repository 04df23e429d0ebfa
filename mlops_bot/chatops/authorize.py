"""Who may run a ChatOps command, and where. Every check asks the forge's API or the registry, never the
comment: the commenter's role (forge.role_of), the discussion's state and origin (forge.discussion), the version
and the stage. The first refusal is the answer, and nothing has moved by then.

The order: the command is enabled (`chatops.commands`); the commenter's role is at least `chatops.permission`;
the pull/merge request is open and not from a fork (a fork's pull request never makes the bot write with this
repository's token), and `rerun`/`compare` are on a pull request; the version exists; the stage exists; for
`approve`, the stage asks for approval, takes it from comments, and the commenter's role is at least its
`approval.permission`.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config.lookup import close_match
from ..config.model import Config, Stage, role_at_least
from ..errors import NotFound
from ..forges.base import Discussion, Forge
from ..lifecycle.stages import entry_stage
from ..registry.base import ModelVersion, Registry
from .command import Command
from .comment import Comment

_NEEDS_PULL_REQUEST = ("rerun", "compare")
_NEEDS_VERSION = ("compare", "promote", "approve")
_NEEDS_STAGE = ("promote", "rollback", "approve")
_SHOWN_VERSIONS = 10


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    reason: str = ""  # plain text: why not (the reply escapes it)
    role: str = ""  # the commenter's role, as the forge said
    discussion: Discussion | None = None
    version: ModelVersion | None = None
    stage: Stage | None = None


def authorize(config: Config, registry: Registry, forge: Forge, comment: Comment, command: Command) -> Verdict:
    verb = command.verb
    if verb not in config.chatops.commands:
        enabled = ", ".join(config.chatops.commands) or "none"
        return Verdict(False, f"'{verb}' is not enabled for this repository (chatops.commands in ml.yaml: {enabled}).")
    role = forge.role_of(comment.author)
    wanted = config.chatops.permission
    if not role_at_least(role, wanted):
        return Verdict(False, f"sorry, only people with at least {wanted} access to this repository may run "
                              f"/mlops-bot {verb} (your role here: {role}). Ask a maintainer to run it.", role)
    found = _discussion(forge, comment, verb)
    if isinstance(found, str):
        return Verdict(False, found, role)
    version = _version(config, registry, command) if verb in _NEEDS_VERSION else None
    if isinstance(version, str):
        return Verdict(False, version, role, found)
    stage = _stage(config, command) if verb in _NEEDS_STAGE else None
    if isinstance(stage, str):
        return Verdict(False, stage, role, found, version)
    if verb == "approve" and stage is not None:
        refused = _approval_refused(stage, role)
        if refused:
            return Verdict(False, refused, role, found, version, stage)
    return Verdict(True, "", role, found, version, stage)


def _discussion(forge: Forge, comment: Comment, verb: str) -> Discussion | str:
    number = comment.number or 0
    try:
        found = forge.discussion(number)
    except NotFound:
        return f"#{number} was not found on {forge.name}; nothing was done."
    kind = "pull request" if found.is_pull_request else "issue"
    if found.state != "open":
        return (f"this {kind} is {found.state}; commands run only on open ones. Run it on an open pull request, or "
                "with mlops-bot from CI.")
    if found.from_fork:
        return ("commands on a pull request from a fork never run with this repository's token; a maintainer can "
                "push the branch to this repository and run the command on that pull request.")
    if verb in _NEEDS_PULL_REQUEST and not found.is_pull_request:
        return f"'{verb}' works on a pull/merge request, and this is an issue."
    return found


def _version(config: Config, registry: Registry, command: Command) -> ModelVersion | str:
    name = config.model.name
    try:
        return registry.get_model_version(name, command.version or "")
    except NotFound:
        pass
    try:
        known = [v.version for v in registry.search_model_versions(name, max_results=_SHOWN_VERSIONS)]
    except NotFound:
        known = []
    if not known:
        return f"v{command.version} of {name} does not exist; {name} has no versions yet."
    listed = ", ".join(f"v{v}" for v in sorted(known, key=_number, reverse=True))
    newest = f" (the newest {_SHOWN_VERSIONS})" if len(known) >= _SHOWN_VERSIONS else ""
    return f"v{command.version} of {name} does not exist; versions: {listed}{newest}."


def _number(version: str) -> int:
    return int(version) if version.isdigit() else -1


def _stage(config: Config, command: Command) -> Stage | str:
    if command.stage is None:
        return entry_stage(config)
    found = config.promote.stage(command.stage)
    if found is not None:
        return found
    names = [s.alias for s in config.promote.all_stages]
    return (f"there is no stage '{command.stage}' in {config.path.name}{close_match(command.stage, names)} (its "
            f"stages: {', '.join(names)}).")


def _approval_refused(stage: Stage, role: str) -> str:
    rule = stage.approval
    if rule is None:
        return f"{stage.alias} needs no approval; nothing to approve."
    if "comment" not in rule.via:
        return (f"approvals of {stage.alias} are not taken from comments here (promote.stages[].approval.via: "
                f"{', '.join(rule.via)}).")
    if not role_at_least(role, rule.permission):
        return (f"sorry, approving {stage.alias} needs at least {rule.permission} access to this repository (your "
                f"role here: {role}).")
    return ""
