"""The gitops target against a real bare git repository on disk."""

from __future__ import annotations

import difflib
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from mlops_bot.config.model import DeployTarget
from mlops_bot.deploy import gitops
from mlops_bot.deploy.base import DeployRequest, DeploySession
from mlops_bot.errors import RemoteError, UsageError
from tests.helpers.deploy import MODEL, SUMMARY
from tests.helpers.git import git
from tests.helpers.gitops import MANIFEST, Remote

REQUEST = DeployRequest(MODEL, "3", f"models:/{MODEL}/3", "pass", SUMMARY, "c0ffee", idempotency_key="key-3")
URI_PATH = "spec.predictor.model.storageUri"


@dataclass
class RecordingForge:
    """A ChangeRequests seam that records what it was asked and answers like a forge would."""

    calls: list[dict[str, str]] = field(default_factory=list)

    def open_pull_request(self, head: str, base: str, title: str, body: str) -> str:
        self.calls.append({"head": head, "base": base, "title": title, "body": body})
        return "https://forge.invalid/pulls/7"


def target(remote: Remote, **fields: object) -> DeployTarget:
    values: dict[str, object] = {"name": "prod", "type": "gitops", "file": "deploy/inference.yaml",
                                 "repo": str(remote.bare), "set": {URI_PATH: "{model_uri}"}}
    return DeployTarget(**{**values, **fields})  # type: ignore[arg-type]


def context(root: Path, lines: list[str] | None = None, forge: RecordingForge | None = None) -> DeploySession:
    return DeploySession(root=root, delivery="d", forge=forge, echo=(lines if lines is not None else []).append)


def test_a_deploy_edits_the_manifest_in_place_and_pushes_a_named_commit(tmp_path: Path, remote: Remote) -> None:
    result = gitops.deploy(target(remote, canary_percent=10), REQUEST, context(tmp_path))
    assert result.status == "succeeded" and result.commit == remote.head()
    after = remote.show("main")
    changed = [line for line in difflib.ndiff(MANIFEST.splitlines(), after.splitlines()) if line[:1] in "+-"]
    assert changed == [
        "-           storageUri: 'models:/iris-classifier/1'    # replaced on deploy",
        "+           storageUri: 'models:/iris-classifier/3'    # replaced on deploy",
        "+       canaryTrafficPercent: 10",
    ]
    subject, _, body = remote.message().partition("\n")
    assert subject == "deploy iris-classifier v3 (criteria passed)"
    assert SUMMARY in body and "Model-URI: models:/iris-classifier/3" in body and "Canary-Traffic-Percent: 10" in body
    assert git(remote.bare, "log", "-1", "--format=%an <%ae>") == "mlops-bot <mlops-bot@users.noreply.localhost>"


def test_a_second_deploy_of_the_same_version_commits_nothing(tmp_path: Path, remote: Remote) -> None:
    gitops.deploy(target(remote), REQUEST, context(tmp_path))
    commits, head = remote.count(), remote.head()
    again = gitops.deploy(target(remote), REQUEST, context(tmp_path))
    assert again.status == "succeeded" and again.detail.startswith("already deployed")
    assert (remote.count(), remote.head()) == (commits, head)


def test_a_push_racing_another_one_is_retried_on_the_new_tip(tmp_path: Path, remote: Remote,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    # A real pre-push hook lands a colleague's commit on the remote after our clone, before our push.
    hooks, marker = tmp_path / "hooks", tmp_path / "raced"
    hooks.mkdir()
    hook = hooks / "pre-push"
    hook.write_text(f"""#!/bin/sh
[ -e '{marker}' ] && exit 0
touch '{marker}'
cd '{remote.seed}' && git fetch -q origin && git checkout -q -B main origin/main && echo more >> README.md &&
git -c user.name=colleague -c user.email=c@example.invalid commit -q -am 'colleague change' &&
git push -q origin main
""")
    hook.chmod(hook.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("GIT_CONFIG_COUNT", "1")
    monkeypatch.setenv("GIT_CONFIG_KEY_0", "core.hooksPath")
    monkeypatch.setenv("GIT_CONFIG_VALUE_0", str(hooks))
    lines: list[str] = []
    result = gitops.deploy(target(remote), REQUEST, context(tmp_path, lines))
    monkeypatch.delenv("GIT_CONFIG_COUNT")
    assert marker.exists() and any("moved on the remote" in line for line in lines)
    assert result.status == "succeeded" and result.commit == remote.head()
    assert git(remote.bare, "log", "--format=%s", "main").splitlines()[:3] == \
        ["deploy iris-classifier v3 (criteria passed)", "colleague change", "seed"]
    assert yaml.safe_load(remote.show("main"))["spec"]["predictor"]["model"]["storageUri"] == f"models:/{MODEL}/3"


def test_pull_request_mode_pushes_a_branch_and_asks_the_forge(tmp_path: Path, remote: Remote) -> None:
    forge = RecordingForge()
    result = gitops.deploy(target(remote, pull_request=True), REQUEST, context(tmp_path, forge=forge))
    head = "mlops-bot/deploy-iris-classifier-v3"
    assert result.url == "https://forge.invalid/pulls/7" and result.commit == remote.head(head)
    [call] = forge.calls
    assert (call["head"], call["base"], call["title"]) == (head, "main", "deploy iris-classifier v3 (criteria passed)")
    assert SUMMARY in call["body"]
    assert remote.show("main") == MANIFEST  # the base branch is untouched until the PR merges
    assert f"models:/{MODEL}/3" in remote.show(head)
    pushed = remote.head(head)
    gitops.deploy(target(remote, pull_request=True), REQUEST, context(tmp_path, forge=forge))
    assert remote.head(head) == pushed and len(forge.calls) == 2  # no new commit; the forge finds the open PR


def test_pull_request_mode_without_a_forge_fails_clearly(tmp_path: Path, remote: Remote) -> None:
    with pytest.raises(UsageError, match="no forge is available"):
        gitops.deploy(target(remote, pull_request=True), REQUEST, context(tmp_path))


def test_a_named_branch_is_the_one_pushed_to(tmp_path: Path, remote: Remote) -> None:
    remote.commit_in_seed("deploy/inference.yaml", MANIFEST + "# staging\n", "staging manifest", branch="staging")
    main = remote.head("main")
    gitops.deploy(target(remote, branch="staging"), REQUEST, context(tmp_path))
    assert remote.head("main") == main
    assert remote.message("staging").startswith("deploy iris-classifier v3")


def test_the_default_repository_is_the_origin_of_the_project(tmp_path: Path, remote: Remote) -> None:
    project = tmp_path / "project"
    git(tmp_path, "clone", "-q", str(remote.bare), str(project))
    gitops.deploy(target(remote, repo=None), REQUEST, context(project))
    assert remote.message().startswith("deploy iris-classifier v3")


def test_a_canary_needs_an_inference_service(tmp_path: Path, remote: Remote) -> None:
    remote.commit_in_seed("deploy/inference.yaml", MANIFEST.replace("InferenceService", "Deployment"), "not kserve")
    with pytest.raises(UsageError, match="not a KServe InferenceService"):
        gitops.deploy(target(remote, canary_percent=5), REQUEST, context(tmp_path))


def test_a_missing_manifest_or_branch_fails_clearly(tmp_path: Path, remote: Remote) -> None:
    with pytest.raises(UsageError, match=r"deploy/missing\.yaml does not exist"):
        gitops.deploy(target(remote, file="deploy/missing.yaml"), REQUEST, context(tmp_path))
    with pytest.raises(RemoteError, match="git clone failed"):
        gitops.deploy(target(remote, branch="no-such-branch"), REQUEST, context(tmp_path))


def test_credentials_in_the_repository_url_are_never_shown(tmp_path: Path) -> None:
    url = "http://deployer:hunter2-token@127.0.0.1:9/gitops.git"  # port 9 (discard): refused at once
    bad = DeployTarget("prod", "gitops", file="m.yaml", repo=url, set={"a": "b"}, timeout=20)
    with pytest.raises(RemoteError) as caught:
        gitops.deploy(bad, REQUEST, context(tmp_path))
    assert "hunter2-token" not in str(caught.value) and "deployer" not in str(caught.value)
    assert "127.0.0.1:9/gitops.git" in str(caught.value)


def test_the_clone_is_removed_afterwards(tmp_path: Path, remote: Remote, monkeypatch: pytest.MonkeyPatch) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    gitops.deploy(target(remote), REQUEST, context(tmp_path))
    assert os.listdir(scratch) == []


def test_a_manifest_symlinked_out_of_the_repository_is_refused(tmp_path: Path, remote: Remote) -> None:
    outside = tmp_path / "outside.yaml"
    outside.write_text(MANIFEST)
    (remote.seed / "deploy/link.yaml").symlink_to(outside)
    git(remote.seed, "add", "deploy/link.yaml")
    git(remote.seed, "commit", "-q", "-m", "link")
    git(remote.seed, "push", "-q", "origin", "main")
    with pytest.raises(UsageError, match="leads outside the repository"):
        gitops.deploy(target(remote, file="deploy/link.yaml"), REQUEST, context(tmp_path))
    assert outside.read_text() == MANIFEST
