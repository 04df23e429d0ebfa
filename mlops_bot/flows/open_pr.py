"""The `open_pr` action of `on:` rules: a drift finding becomes a pull/merge request, so the retraining it
asks for goes through the normal PR check and the normal promotion, with the evidence in git.

For a `drift.detected` event, the record `monitor/last-drift.json` (the finding's id, model, champion
version, drifted features, when it was seen, the summary, the monitoring run and the report's path; sorted
keys, so the same finding gives the same bytes) is committed on the branch `mlops-bot/drift-<first 12 of the
finding id>` from the default branch of the project's `origin`, pushed, and a pull/merge request is opened
with the drift report (the event's report_file, read from the project, cut at the forge's comment limit) as
its description. It goes through deploy/gitrepo.py's `propose`, as the gitops deploy target does.

Once per finding: the same finding again finds its open branch and keeps the record there as it is (the day
it was first seen stays; no new commit), and the forge finds the open pull request; a finding recorded on
the default branch already (its pull request was merged) opens nothing. A different finding opens another.

The forge is found as the retrain action finds it (the job's own in CI; MLOPS_BOT_FORGE elsewhere); git
sends the job's forge token (GITHUB_TOKEN; GITLAB_TOKEN or CI_JOB_TOKEN) to the forge's own host, so a
checkout that kept no credentials can still push. On GitHub the job needs `contents: write` and
`pull-requests: write`; on GitLab a token that may push and open merge requests.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..console import log
from ..errors import UsageError
from ..events.rules import kind
from ..support.paths import UnsafePath, confined, inside_project, normalise

if TYPE_CHECKING:
    from ..events.event import Event
    from ..forges.base import Forge
    from .project import Project

RECORD = "monitor/last-drift.json"
BRANCH_PREFIX = "mlops-bot/drift-"
TITLE_LIMIT = 200
RECORDED = ("finding_id", "model", "version", "drifted_features", "findings", "summary", "run_id", "report_file")


def job_forge(project: Project, reason: str) -> Forge:
    """The forge of the CI job, or the one MLOPS_BOT_FORGE names outside CI (`serve`, `watch`)."""
    from ..ci.context import read_context, read_forge_context
    from ..forges import open_forge

    ci = read_context(project.env)
    if not ci.in_ci:
        ci = read_forge_context(project.env, reason=reason)
    ci = replace(ci, workflow=project.env.get("MLOPS_BOT_RETRAIN_WORKFLOW") or ci.workflow)
    return open_forge(ci, project.env, root=project.config.root)


def finding_of(event: Event) -> str | None:
    """The stable id of the drift an event reports; None for any other event."""
    finding = event.data.get("finding_id")
    if kind(event.type) != "drift.detected" or finding in (None, ""):
        return None
    return str(finding)


def open_pr(project: Project, event: Event) -> bool:
    from ..deploy.gitrepo import Proposal, clone, commit, origin_url, propose, remote_file, token_config
    from ..forges.base import COMMENT_LIMIT

    finding, model = finding_of(event), project.config.model.name
    if finding is None:
        log(f"mlops-bot: {event.type} is no drift finding with an id; no pull request to open.")
        return True
    if event.data.get("model") not in (None, "", model):
        log(f"mlops-bot: {event.type} is about model {event.data['model']!r}, not {model!r}; skipped.")
        return True
    forge = job_forge(project, "an `on:` rule asked to open a pull request")
    root = project.config.root
    url = origin_url(root, project.env, f"the open_pr action pushes to the 'origin' remote of {root}, and there is "
                     "none; run it in a clone of the project's repository.")
    head = BRANCH_PREFIX + (re.sub(r"[^A-Za-z0-9]+", "-", finding)[:12].strip("-") or "finding")
    with clone(url, {**project.env, **token_config(url, project.env)}) as (git, base):
        if _finding_in(_text(git.work / RECORD)) == finding:
            log(f"mlops-bot: drift finding {finding} is recorded on {base} already; no pull request to open.")
            return True
        text = remote_file(git, head, RECORD)
        if text is None or _finding_in(text) != finding:  # else: keep the record as first seen
            text = record_text(event)
        path = _writable(git.work)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        title = _title(event, model)
        commit(git, [RECORD], title, _message(event, finding))
        link, sha = propose(git, forge, Proposal(head, base, (RECORD,), title, report_body(root, event, COMMENT_LIMIT)))
    log(f"mlops-bot: drift finding {finding}: pull request {link} from {head} ({sha[:12]}) into {base}")
    return True


def record_text(event: Event) -> str:
    """monitor/last-drift.json for the event: its fields and the time it was seen, sorted, one per line."""
    record: dict[str, Any] = {key: event.data[key] for key in RECORDED if key in event.data}
    record["detected_at"] = event.time
    return json.dumps(record, sort_keys=True, indent=2, ensure_ascii=False, default=str) + "\n"


def report_body(root: Path, event: Event, limit: int) -> str:
    """The drift report as the pull request's description, cut to `limit` characters; the summary when the
    report cannot be read."""
    name = str(event.data.get("report_file") or "")
    summary = str(event.data.get("summary") or "Drift was detected.")
    if not name or not inside_project(name):
        return summary[:limit]
    path = root / normalise(name)
    try:
        if not path.resolve().is_relative_to(root.resolve()):  # a symbolic link must not lead out
            raise UsageError(f"{name} leads outside the project")
        text = path.read_text(encoding="utf-8", errors="replace")
    except (OSError, UsageError) as exc:
        log(f"mlops-bot: warning: the drift report {name} could not be read ({exc}); the pull request gets the "
            "summary instead.")
        return summary[:limit]
    if len(text) <= limit:
        return text
    note = f"\n\n…the report is cut here at the forge's limit; the whole of it is {name} in the monitoring job.\n"
    return text[: limit - len(note)] + note


def _title(event: Event, model: str) -> str:
    features = [str(f) for f in event.data.get("drifted_features") or ()]
    shown = ", ".join(features[:3]) + (f" and {len(features) - 3} more" if len(features) > 3 else "")
    version = event.data.get("version")
    title = f"drift: {model}" + (f" v{version}" if version not in (None, "") else "") + \
        (f" sees drift in {shown}" if shown else " sees drifted data")
    return title if len(title) <= TITLE_LIMIT else title[: TITLE_LIMIT - 1] + "…"


def _message(event: Event, finding: str) -> str:
    lines = [str(event.data.get("summary") or ""), "", f"Drift-Finding: {finding}"]
    for key, trailer in (("version", "Model-Version"), ("run_id", "Monitoring-Run"), ("report_file", "Report")):
        if event.data.get(key) not in (None, ""):
            lines.append(f"{trailer}: {event.data[key]}")
    return "\n".join(lines).strip()


def _writable(work: Path) -> Path:
    """RECORD in the clone, as a path to write: never through a symbolic link the repository holds."""
    try:
        return confined(work, RECORD.split("/"))
    except UnsafePath as exc:
        raise UsageError(f"the open_pr action cannot write {RECORD} in the repository: {exc}.") from None


def _text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def _finding_in(text: str | None) -> str | None:
    """The finding id a record holds; None for no record or one that is not ours to read."""
    try:
        doc = json.loads(text) if text else None
    except ValueError:
        return None
    return str(doc["finding_id"]) if isinstance(doc, Mapping) and doc.get("finding_id") else None
