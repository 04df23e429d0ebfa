"""What each `on:` action does with an event; every one calls the flow the command line uses.

- deploy: `deploy_all` for the event's version of the model. For an alias event, only while the alias
  still points at that version: a late or replayed delivery never deploys an older version over a newer.
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
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING

from .. import __version__
from ..console import log
from ..errors import UsageError
from ..events.rules import Action, ActionContext, kind

if TYPE_CHECKING:
    from ..ci.context import CIContext
    from ..events.bus import Event

NOTIFY_URL = "MLOPS_BOT_NOTIFY_URL"
NOTIFY_SECRET = "MLOPS_BOT_NOTIFY_SECRET"


def _ours(context: ActionContext, event: Event) -> bool:
    model = event.data.get("model")
    if model and model != context.config.model.name:
        log(f"mlops-bot: {event.type} is about model {model!r}, not {context.config.model.name!r}; skipped.")
        return False
    return True


def _value(event: Event, name: str) -> str | None:
    value = event.data.get(name)
    return None if value in (None, "") else str(value)


def deploy(context: ActionContext, event: Event) -> bool:
    from ..deploy import deploy_all, raise_for_failures
    from ..registry import alias_holder

    version = _value(event, "version")
    if not _ours(context, event) or version is None:
        log(f"mlops-bot: {event.type} names no version of {context.config.model.name}; nothing to deploy.")
        return True
    alias = _value(event, "alias")
    if alias and kind(event.type) == "model_version.alias_set":
        holder = alias_holder(context.registry, context.config.model.name, alias)
        if holder is None or holder.version != version:
            now = f"v{holder.version}" if holder else "unset"
            log(f"mlops-bot: the {alias} alias is {now} now, not v{version}; a stale event deploys nothing.")
            return True
    raise_for_failures(deploy_all(context.config, context.registry, version))
    return True


def promote(context: ActionContext, event: Event) -> bool:
    from ..ci.context import read_context
    from .compare import compare_registry
    from .promote import promote_flow

    run_id = _value(event, "run_id")
    if not _ours(context, event) or run_id is None:
        log(f"mlops-bot: {event.type} names no run; nothing to promote.")
        return False
    decision = compare_registry(context.config, context.registry, run_id)
    promotion, _ = promote_flow(context.config, context.registry, decision, read_context(context.env), True)
    log(f"mlops-bot: {promotion.reason}")
    return promotion.is_champion


def compare(context: ActionContext, event: Event) -> bool:
    from .compare import compare_registry

    run_id = _value(event, "run_id")
    if not _ours(context, event) or run_id is None:
        log(f"mlops-bot: {event.type} names no run; nothing to compare.")
        return False
    decision = compare_registry(context.config, context.registry, run_id)
    log(f"mlops-bot: {decision.verdict}: {decision.summary}")
    return decision.passed


def gate(context: ActionContext, event: Event) -> bool:
    from .gate import check_gate, describe_gate

    if not _ours(context, event):
        return False
    result = check_gate(context.config, context.registry, version=_value(event, "version"))
    log(f"mlops-bot: {describe_gate(result)}")
    return result.is_open


def notify(context: ActionContext, event: Event) -> bool:
    from ..deploy.webhook import deliver, shown, sign

    url = context.env.get(NOTIFY_URL, "")
    if not url:
        raise UsageError(f"the notify action needs {NOTIFY_URL}: set it to the URL to POST events to.")
    body = json.dumps({"delivery_id": event.id, "timestamp": int(time.time()), "event": event.to_dict()},
                      sort_keys=True, separators=(",", ":"), default=str).encode()
    headers = {"Content-Type": "application/json", "User-Agent": f"mlops-bot/{__version__}",
               "X-MLOps-Bot-Event": event.type, "X-MLOps-Bot-Delivery": event.id, "Idempotency-Key": event.id}
    secret = context.env.get(NOTIFY_SECRET, "")
    if secret:
        headers["X-MLOps-Bot-Signature"] = sign(body, secret)
    status = deliver(url, body, headers)
    log(f"mlops-bot: notified {shown(url)} of {event.type}: HTTP {status}")
    return True


def retrain(context: ActionContext, event: Event) -> bool:
    from ..ci.context import read_context
    from ..forges import open_forge

    ci = read_context(context.env)
    ci = _service_context(context.env) if not ci.in_ci else replace(
        ci, workflow=context.env.get("MLOPS_BOT_RETRAIN_WORKFLOW") or ci.workflow)
    forge = open_forge(ci, context.env, root=context.config.root)
    ref = context.env.get("MLOPS_BOT_RETRAIN_REF") or ci.default_branch or "main"
    # A workflow_dispatch with inputs the workflow does not declare is refused (422); GitLab takes any variable.
    inputs = {} if ci.platform == "github" else {"MLOPS_BOT_EVENT": event.type, "MLOPS_BOT_EVENT_ID": event.id}
    url = forge.trigger_pipeline(ref, inputs)
    log(f"mlops-bot: started the {forge.name} pipeline on {ref} for {event.type}" + (f": {url}" if url else ""))
    return True


def _service_context(env: Mapping[str, str]) -> CIContext:
    from ..ci.context import CIContext

    platform = env.get("MLOPS_BOT_FORGE", "").strip().lower()
    why = "an `on:` rule asked to retrain"
    if platform == "github":
        return CIContext(platform="github", event="mlops-bot", flow="none", reason=why,
                         repository=env.get("GITHUB_REPOSITORY", ""),
                         api_url=env.get("GITHUB_API_URL", "https://api.github.com").rstrip("/"),
                         server_url=env.get("GITHUB_SERVER_URL", "https://github.com").rstrip("/"),
                         workflow=env.get("MLOPS_BOT_RETRAIN_WORKFLOW", ""))
    if platform == "gitlab":
        server = env.get("CI_SERVER_URL", "https://gitlab.com").rstrip("/")
        return CIContext(platform="gitlab", event="mlops-bot", flow="none", reason=why,
                         repository=env.get("CI_PROJECT_PATH", ""), server_url=server,
                         api_url=env.get("CI_API_V4_URL", f"{server}/api/v4"), project_id=env.get("CI_PROJECT_ID", ""),
                         default_branch=env.get("CI_DEFAULT_BRANCH", ""))
    raise UsageError("the retrain action runs outside CI only with MLOPS_BOT_FORGE=github (GITHUB_REPOSITORY, "
                     "MLOPS_BOT_RETRAIN_WORKFLOW, GITHUB_TOKEN) or MLOPS_BOT_FORGE=gitlab (CI_SERVER_URL, "
                     "CI_PROJECT_ID, CI_PROJECT_PATH, GITLAB_TOKEN).")


ACTIONS: dict[str, Action] = {"deploy": deploy, "promote": promote, "compare": compare, "gate": gate,
                              "notify": notify, "retrain": retrain}
