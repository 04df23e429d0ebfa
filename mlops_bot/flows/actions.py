"""The `on:` action table: what each action does with an event; every one calls the flow the command line
uses. `rule_handler` hands the table to events/rules.py; `run_held_rules` is CI mode's after-command step.

- deploy: `deploy_all` for the event's version of the model. For an alias event, only while the alias
  still points at that version: a late or replayed delivery never deploys an older version over a newer; the
  alias of a stage of promote.stages deploys that stage's targets only.
- promote: compare the event's run (run.finished, model_version.created) and promote it (`promote_flow`).
- compare: judge the event's run against the champion; stops the rule unless it passes.
- gate: the release gate for the event's version (the champion when it names none); stops the rule if closed.
- notify: POST {"delivery_id", "timestamp", "event"} to MLOPS_BOT_NOTIFY_URL with the deploy webhook's
  retries, signed `X-MLOps-Bot-Signature: sha256=<hex HMAC of the body>` when MLOPS_BOT_NOTIFY_SECRET is
  set; the delivery id is the event id (the same on every retry: receivers dedup on it).
- retrain: start the CI pipeline through the forge (GitHub workflow_dispatch, GitLab pipeline) on
  MLOPS_BOT_RETRAIN_REF (default: the default branch, else main). In CI the job's own forge is used;
  elsewhere (`serve`) MLOPS_BOT_FORGE=github|gitlab with GITHUB_REPOSITORY and MLOPS_BOT_RETRAIN_WORKFLOW,
  or CI_SERVER_URL, CI_PROJECT_ID and CI_PROJECT_PATH, and the forge's token variable. Mind loops: in CI, a
  rule retraining on run.finished starts the pipeline that finishes another run; narrow it with `where:`.
  A drift.detected event starts one pipeline per drift finding and champion version: the finding's id is
  added to the champion version's list (tag mlops_bot.drift.retrained, a JSON list of the last 20 ids) once
  the pipeline was started, and read first, so a scheduled check on a fresh runner that sees the same drift
  again, even after another one, starts nothing.
- open_pr: a drift finding as a pull/merge request with a record in git and the report as its description
  (flows/open_pr.py).
- chatops: a `/mlops-bot ...` comment (github.issue_comment, gitlab.note) checked, done and answered as
  `mlops-bot chatops` does (flows/chatops_act.py), through the forge MLOPS_BOT_FORGE names; `rerun` has the
  forge run the pull request's check again (Forge.rerun_check: a re-run of the head commit's GitHub workflow run,
  preferring MLOPS_BOT_RERUN_WORKFLOW, or a GitLab merge request pipeline); the bot never runs its code. A
  comment from another repository than that forge's is skipped.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from .. import __version__
from ..config.model import Config
from ..console import log
from ..errors import BotError, UsageError
from ..events.bus import Bus
from ..events.rules import RuleHandler, kind
from .open_pr import open_pr
from .project import Opener, Project

if TYPE_CHECKING:
    from ..ci.context import CIContext
    from ..decide.decision import Decision
    from ..events.event import Event

Action = Callable[[Project, "Event"], bool]

NOTIFY_URL = "MLOPS_BOT_NOTIFY_URL"
NOTIFY_SECRET = "MLOPS_BOT_NOTIFY_SECRET"


def _ours(project: Project, event: Event) -> bool:
    model = event.data.get("model")
    if model and model != project.config.model.name:
        log(f"mlops-bot: {event.type} is about model {model!r}, not {project.config.model.name!r}; skipped.")
        return False
    return True


def _value(event: Event, name: str) -> str | None:
    value = event.data.get(name)
    return None if value in (None, "") else str(value)


def deploy(project: Project, event: Event) -> bool:
    from ..deploy import DeployOptions, deploy_all, raise_for_failures
    from ..lifecycle.stages import stage_targets
    from ..registry import alias_holder

    version = _value(event, "version")
    if not _ours(project, event) or version is None:
        log(f"mlops-bot: {event.type} names no version of {project.config.model.name}; nothing to deploy.")
        return True
    alias = _value(event, "alias")
    if alias and kind(event.type) == "model_version.alias_set":
        holder = alias_holder(project.registry, project.config.model.name, alias)
        if holder is None or holder.version != version:
            now = f"v{holder.version}" if holder else "unset"
            log(f"mlops-bot: the {alias} alias is {now} now, not v{version}; a stale event deploys nothing.")
            return True
    config = project.config
    stage = config.promote.stage(alias) if alias and config.promote.stages else None
    # A stage's alias deploys that stage's targets only: staging's move never ships to production's endpoint.
    targets = list(stage_targets(config, stage)) if stage is not None else None
    if targets == []:  # the stage deploys nothing (its `deploy: []`), not everything
        log(f"mlops-bot: the stage {alias} has no deploy targets; nothing to deploy.")
        return True
    from .rollout import alias_back

    hook = alias_back(config, project.registry, project.env)
    raise_for_failures(deploy_all(config, project.registry, version, DeployOptions(targets=targets, on_abort=hook)))
    return True


def promote(project: Project, event: Event) -> bool:
    from ..ci.context import read_context
    from .promote import promote_flow

    decision = _judged(project, event, "promote")
    if decision is None:
        return False
    promotion, _ = promote_flow(project.config, project.registry, decision, read_context(project.env), True)
    log(f"mlops-bot: {promotion.reason}")
    return promotion.is_champion


def compare(project: Project, event: Event) -> bool:
    decision = _judged(project, event, "compare")
    if decision is None:
        return False
    log(f"mlops-bot: {decision.verdict}: {decision.summary}")
    return decision.passed


def _judged(project: Project, event: Event, what: str) -> Decision | None:
    """The event's run judged against the champion; None when the event names no run of this model."""
    from .compare import compare_registry

    run_id = _value(event, "run_id")
    if not _ours(project, event) or run_id is None:
        log(f"mlops-bot: {event.type} names no run; nothing to {what}.")
        return None
    return compare_registry(project.config, project.registry, run_id)


def gate(project: Project, event: Event) -> bool:
    from .gate import check_gate, describe_gate

    if not _ours(project, event):
        return False
    result = check_gate(project.config, project.registry, version=_value(event, "version"))
    log(f"mlops-bot: {describe_gate(result)}")
    return result.is_open


def notify(project: Project, event: Event) -> bool:
    from ..deploy.webhook import deliver, sign
    from ..support.urls import redact

    url = project.env.get(NOTIFY_URL, "")
    if not url:
        raise UsageError(f"the notify action needs {NOTIFY_URL}: set it to the URL to POST events to.")
    body = json.dumps({"delivery_id": event.id, "timestamp": int(time.time()), "event": event.to_dict()},
                      sort_keys=True, separators=(",", ":"), default=str).encode()
    headers = {"Content-Type": "application/json", "User-Agent": f"mlops-bot/{__version__}",
               "X-MLOps-Bot-Event": event.type, "X-MLOps-Bot-Delivery": event.id, "Idempotency-Key": event.id}
    secret = project.env.get(NOTIFY_SECRET, "")
    if secret:
        headers["X-MLOps-Bot-Signature"] = sign(body, secret)
    status = deliver(url, body, headers)
    log(f"mlops-bot: notified {redact(url)} of {event.type}: HTTP {status}")
    return True


def retrain(project: Project, event: Event) -> bool:
    from .open_pr import finding_of, job_forge

    finding, version = finding_of(event), _value(event, "version")
    drift = (finding, version) if finding is not None and version is not None else None
    if drift and not _ours(project, event):
        return True
    retrained = _retrained_for(project, drift[1]) if drift else []
    if drift and drift[0] in retrained:
        log(f"mlops-bot: drift finding {finding} of v{version} started a retraining already; not starting another.")
        return True
    forge = job_forge(project, "an `on:` rule asked to retrain")
    ci = read_ci(project)
    ref = project.env.get("MLOPS_BOT_RETRAIN_REF") or ci.default_branch or "main"
    # A workflow_dispatch with inputs the workflow does not declare is refused (422); GitLab takes any variable.
    inputs = {} if ci.platform == "github" else {"MLOPS_BOT_EVENT": event.type, "MLOPS_BOT_EVENT_ID": event.id}
    url = forge.trigger_pipeline(ref, inputs)
    log(f"mlops-bot: started the {forge.name} pipeline on {ref} for {event.type}" + (f": {url}" if url else ""))
    if drift:  # recorded once the pipeline started: a failure before it leaves the finding to act on again
        from ..registry import tags

        project.registry.set_model_version_tag(project.config.model.name, drift[1], tags.DRIFT_RETRAINED,
                                               retrained_value(retrained, drift[0]))
    return True


def chatops(project: Project, event: Event) -> bool:
    from ..chatops.comment import from_event
    from .chatops import chatops_context, foreign, open_chatops_forge
    from .chatops_act import handle

    comment = from_event(event.type, event.data)
    if comment is None:
        log(f"mlops-bot: {event.type} is not a comment; the chatops action answers github.issue_comment and "
            "gitlab.note events.")
        return True
    context = chatops_context(project.env)
    why = foreign(context, comment, str(event.data.get("repository") or event.data.get("project") or ""))
    if why:
        log(f"mlops-bot: chatops: skipped: {why}")
        return True
    outcome = handle(project, open_chatops_forge(project, context), comment, "serve")
    return outcome.outcome not in ("refused", "unavailable")


def read_ci(project: Project) -> CIContext:
    from ..ci.context import read_context, read_forge_context

    ci = read_context(project.env)
    return ci if ci.in_ci else read_forge_context(project.env, reason="an `on:` rule asked to retrain")


RETRAINED_KEPT = 20  # finding ids remembered per version: drift that comes back after 20 others retrains again


def _retrained_for(project: Project, version: str) -> list[str]:
    """The drift findings whose retraining was started for this version of the model, oldest first."""
    from ..registry import tags

    value = project.registry.get_model_version(project.config.model.name, version).tags.get(tags.DRIFT_RETRAINED)
    return retrained_ids(value)


def retrained_ids(value: str | None) -> list[str]:
    """The tag's JSON list of finding ids; a value of an older bot (one bare id) is a list of one."""
    if not value:
        return []
    try:
        ids = json.loads(value)
    except ValueError:
        return [value]
    if isinstance(ids, list) and all(isinstance(i, str) for i in ids):
        return ids
    return [value]


def retrained_value(seen: list[str], finding: str) -> str:
    """The tag value with `finding` added last: the last RETRAINED_KEPT ids, within MLflow's tag value limit."""
    from ..lifecycle.history import TAG_VALUE_LIMIT

    kept = [i for i in seen if i != finding][-(RETRAINED_KEPT - 1):]
    ids = [*kept, finding]
    value = json.dumps(ids, separators=(",", ":"))
    while len(value) > TAG_VALUE_LIMIT and len(ids) > 1:  # long ids from elsewhere: the oldest go first
        ids = ids[1:]
        value = json.dumps(ids, separators=(",", ":"))
    return value


ACTIONS: dict[str, Action] = {"deploy": deploy, "promote": promote, "compare": compare, "gate": gate,
                              "notify": notify, "retrain": retrain, "open_pr": open_pr, "chatops": chatops}


class ProjectActions:
    """The ActionRunner of events/rules.py: ACTIONS on one Project, whose registry is opened when an action
    first needs it and closed when the event is handled."""

    def __init__(self, project: Project) -> None:
        self.project = project

    def run(self, action: str, event: Event) -> bool:
        if action not in ACTIONS:
            raise UsageError(f"unknown `on:` action '{action}'; use one of {', '.join(ACTIONS)}.")
        return ACTIONS[action](self.project, event)

    def close(self) -> None:
        self.project.close()


def rule_handler(config: Config, env: Mapping[str, str], opener: Opener | None = None) -> RuleHandler:
    """The handler of ml.yaml's `on:` rules, for `serve`, `watch` and CI mode."""
    return RuleHandler(config.rules, lambda: ProjectActions(Project.of(config, env, opener)))


def run_held_rules(bus: Bus, project: Project) -> None:
    """CI mode: once the command has done its own work, its events meet the `on:` rules of the ml.yaml it was
    given. MLOPS_BOT_RULES=off leaves them to `serve`/`watch` alone."""
    if not bus.held or project.env.get("MLOPS_BOT_RULES", "on") == "off":
        return
    try:
        config = project.config_if_present()
    except BotError as exc:
        log(f"mlops-bot: warning: the `on:` rules did not run for {bus.held} event(s): {project.config_path} "
            f"could not be loaded:\n{exc}")
        return
    if config is None or not config.rules:
        return
    bus.subscribe(rule_handler(config, project.env))
    bus.drain()
