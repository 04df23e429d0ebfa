"""The `gitops` target: sets values in a manifest in a git repository and pushes the change (or opens a PR).

The repository (`repo:` a URL or a path, relative paths from ml.yaml's directory; default: the URL of the
`origin` remote of the repository holding ml.yaml) is cloned shallowly into a temporary directory. The
assignments of `set:` are made with their placeholders filled in ({model_uri}, {model_name},
{model_version}); `canary: {traffic_percent: N}` also sets `spec.predictor.canaryTrafficPercent: N` in a
KServe InferenceService: KServe (serverless mode) then sends N% of the traffic to the new revision and the
rest to the last one rolled out at 100% (set 100, or remove the field, to roll out fully).

The commit names the model, the version and the decision. It is pushed to `branch` (default: the remote's
default branch); when the remote moved meanwhile, the push is retried on top of the new tip (fetch,
re-apply). With `pull_request: true` it goes to the branch `mlops-bot/deploy-<model>-v<version>` and a
pull/merge request into `branch` is opened through the forge (deploy/gitrepo.py's `propose`), in the
repository the CI runs for: so pull_request mode is for a manifest in the project's own repository (the
default `repo`). A manifest that holds the values already gets no commit: "already deployed". git
authenticates as it is configured (credential helper, SSH agent, or a token in the URL from an ${ENV}
variable); URLs are shown without credentials, query or fragment (support/urls.py). The commit author is the
configured git identity, or mlops-bot when there is none.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from ..config.model import DeployTarget
from ..errors import RemoteError, UsageError
from ..support.urls import redact
from . import yamledit
from .base import DeployRequest, DeployResult, DeploySession
from .gitrepo import GIT_TIMEOUT_S, Git, Proposal, clone, commit, is_remote, origin_url, propose

PUSH_ATTEMPTS = 5
_RACE = re.compile(r"\[rejected\]|fetch first|non-fast-forward|cannot lock ref|stale info|incorrect old value")


def repo_url(target: DeployTarget, root: Path, env: Mapping[str, str]) -> str:
    if target.repo:
        if is_remote(target.repo):
            return target.repo
        return (root / target.repo).resolve().as_uri()  # file:// so that --depth applies to local clones
    return origin_url(root, env, f"deploy target '{target.name}' has no repo and {root} has no 'origin' remote; "
                      "add repo: (a URL or a path) to the target in ml.yaml.")


def message(request: DeployRequest, target: DeployTarget) -> tuple[str, str]:
    """The commit's subject and body (also the pull request's title and description)."""
    subject = f"deploy {request.model_name} v{request.version} ({request.decision})"
    lines = [request.summary] if request.summary else []
    lines += ["", f"Model-URI: {request.model_uri}", f"Deploy-Target: {target.name}"]
    if target.canary_percent is not None:
        lines.append(f"Canary-Traffic-Percent: {target.canary_percent}")
    if request.commit:
        lines.append(f"Source-Commit: {request.commit}")
    lines.append(f"Idempotency-Key: {request.idempotency_key}")
    return subject, "\n".join(lines).strip()


def deploy(target: DeployTarget, request: DeployRequest, session: DeploySession) -> DeployResult:
    if not target.file or not target.set:
        raise UsageError(f"deploy target '{target.name}' (gitops) needs file: and set: in ml.yaml.")
    url = repo_url(target, session.root, session.env)
    with clone(url, session.env, target.timeout or GIT_TIMEOUT_S, target.branch) as (git, base):
        if target.pull_request:
            return _pull_request(git, target, request, session, base)
        return _push(git, target, request, session, base)


def _apply(git: Git, target: DeployTarget, request: DeployRequest) -> bool:
    """Edits the manifest in the clone; False when it held the values already."""
    assert target.file is not None
    path = git.work / target.file
    if not path.resolve().is_relative_to(git.work.resolve()):  # a symlink in the repository must not lead out
        raise UsageError(f"deploy target '{target.name}': {target.file} leads outside the repository; "
                         "point file: at the manifest itself.")
    if not path.is_file():
        raise UsageError(f"deploy target '{target.name}': {target.file} does not exist in {redact(git.url)}; "
                         "fix file: or the branch.")
    text = path.read_text(encoding="utf-8")
    values = {key: yamledit.fill(value, request.placeholders()) for key, value in target.set.items()}
    try:
        if target.canary_percent is not None:
            if yamledit.load(text).get("kind") != "InferenceService":
                raise yamledit.ManifestError("is not a KServe InferenceService, so canary.traffic_percent has no "
                                             "field to set; use set: for your manifest's own traffic field")
            values["spec.predictor.canaryTrafficPercent"] = str(target.canary_percent)
        edited = yamledit.edit(text, values)
    except yamledit.ManifestError as exc:
        raise UsageError(f"deploy target '{target.name}': {target.file}: {exc}.") from None
    if edited == text:
        return False
    path.write_text(edited, encoding="utf-8")
    return True


def _commit(git: Git, target: DeployTarget, request: DeployRequest) -> str:
    assert target.file is not None
    return commit(git, [target.file], *message(request, target))


def _push(git: Git, target: DeployTarget, request: DeployRequest, session: DeploySession, base: str) \
        -> DeployResult:
    for attempt in range(1, PUSH_ATTEMPTS + 1):
        if not _apply(git, target, request):
            return DeployResult(target.name, target.type, "succeeded", f"already deployed: {target.file} on {base} "
                                f"holds v{request.version}", commit=git.out("rev-parse", "HEAD"))
        sha = _commit(git, target, request)
        done = git.run("push", "--quiet", "origin", f"HEAD:refs/heads/{base}", check=False)
        if done.returncode == 0:
            return DeployResult(target.name, target.type, "succeeded", f"pushed {sha[:12]} to {base} of "
                                f"{redact(git.url)}", commit=sha)
        if not _RACE.search(done.stderr) or attempt == PUSH_ATTEMPTS:
            raise RemoteError("git", None, redact(git.url), f"push to {base} failed after {attempt} attempt(s): "
                              f"{git.tail(done)}")
        session.echo(f"mlops-bot: deploy {target.name}: {base} moved on the remote; fetching and re-applying")
        git.run("fetch", "--quiet", "--depth", "1", "origin", base)
        git.run("reset", "--quiet", "--hard", "FETCH_HEAD")
    raise AssertionError("unreachable: the last attempt returns or raises")


def head_branch(request: DeployRequest) -> str:
    model = re.sub(r"[^A-Za-z0-9._-]+", "-", request.model_name).strip(".-") or "model"
    return f"mlops-bot/deploy-{model}-v{request.version}"


def _pull_request(git: Git, target: DeployTarget, request: DeployRequest, session: DeploySession, base: str) \
        -> DeployResult:
    assert target.file is not None
    if session.forge is None:
        raise UsageError(f"deploy target '{target.name}' has pull_request: true, but no forge is available here "
                         "(run in GitHub Actions or GitLab CI with a token, or push to the branch instead).")
    if not _apply(git, target, request):
        return DeployResult(target.name, target.type, "succeeded", f"already deployed: {target.file} on {base} "
                            f"holds v{request.version}; no pull request needed", commit=git.out("rev-parse", "HEAD"))
    _commit(git, target, request)
    head = head_branch(request)
    subject, body = message(request, target)
    link, sha = propose(git, session.forge, Proposal(head, base, (target.file,), subject, body))
    return DeployResult(target.name, target.type, "succeeded", f"pull request {link} from {head} into {base}",
                        url=link, commit=sha)
