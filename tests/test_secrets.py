"""Credentials never leave the process: a whole PR check against the real mlflow server reached as
http://USER:PASSWORD@127.0.0.1:PORT, with a param holding a signed data URL (password and `?sig=` token) and a
git remote with a CI job token recorded on the run as mlflow records it. Every byte the bot printed, wrote
(.mlops-bot/, the job summary, $GITHUB_OUTPUT) or sent to GitHub (comment, status, check run) is searched for
the canaries. (The server ignores the basic-auth credentials; the commands still send them.)

The tokens of the forges themselves are the subject of tests/forges/test_no_token_leak.py.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from mlops_bot import cli
from tests.helpers.ci_env import apply_env, github_env
from tests.servers.github_server import GitHubServer
from tests.servers.mlflow_server import MlflowServer

pytestmark = [pytest.mark.mlflow, pytest.mark.usefixtures("clean_env")]

CANARIES = ("CANARYPASSWORD", "CANARYSIG", "CANARYJOBTOKEN", "CANARYUSER")
REMOTE = "https://gitlab-ci-token:CANARYJOBTOKEN@gitlab.example/group/project.git"
DATA_URL = "https://CANARYUSER:CANARYPASSWORD@data.example/v2/train.csv?sig=CANARYSIG&se=2030-01-01"
# ml.lock too: it records params.yaml's values to be committed next to it, so the data URL is the user's own,
# in their repository already (tests/pipeline covers the lock file)
INPUTS = ("train.py", "quality.txt", "params.yaml", "ml.yaml", "ml.lock")

# The step sets the tag mlflow's autologging sets from `git remote get-url origin` (on GitLab CI the remote
# carries the job token), through the REST API with the credentials of the URI the bot handed it.
TRAIN = f"""\
import base64, json, os, urllib.parse, urllib.request
uri = urllib.parse.urlsplit(os.environ["MLFLOW_TRACKING_URI"])
auth = base64.b64encode(f"{{uri.username}}:{{uri.password}}".encode()).decode()
body = {{"run_id": os.environ["MLFLOW_RUN_ID"], "key": "mlflow.source.git.repoURL", "value": {REMOTE!r}}}
urllib.request.urlopen(urllib.request.Request(
    f"http://{{uri.hostname}}:{{uri.port}}/api/2.0/mlflow/runs/set-tag", data=json.dumps(body).encode(),
    headers={{"Content-Type": "application/json", "Authorization": "Basic " + auth}}))
accuracy = float(open("quality.txt").read())
os.makedirs("build/model", exist_ok=True)
open("build/model/weights.txt", "w").write(str(accuracy))
json.dump({{"accuracy": accuracy}}, open("build/metrics.json", "w"))
"""
ML_YAML = """\
version: 1
model: {{name: {model}, artifact: build/model}}
tracking: {{uri: "${{MLFLOW_TRACKING_URI}}", experiment: {model}}}
params: params.yaml
pipeline:
  train:
    cmd: [python, train.py]
    deps: [train.py, quality.txt]
    params: [data_url]
    outs: [build/model]
    metrics: build/metrics.json
compare:
  criteria:
    - {{metric: accuracy, threshold: 0.5, min_absolute_change: 0.01}}
promote: {{on: [push]}}
"""


@pytest.fixture
def project(tmp_path: Path, unique: Callable[[str], str]) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    (root / "train.py").write_text(TRAIN)
    (root / "quality.txt").write_text("0.8\n")
    (root / "params.yaml").write_text("data_url: https://data.example/train.csv\n")
    (root / "ml.yaml").write_text(textwrap.dedent(ML_YAML.format(model=unique("secrets"))))
    return root


def written_by_the_bot(tmp_path: Path, project: Path) -> list[Path]:
    """Every file under the test's directory but the project's inputs and what its training step wrote."""
    skip = {project / name for name in INPUTS}
    return [p for p in tmp_path.rglob("*") if p.is_file() and p not in skip and (project / "build") not in p.parents]


def test_no_credential_of_the_tracking_uri_or_a_param_reaches_any_output(
        project: Path, mlflow_server: MlflowServer, github: GitHubServer, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.uri.replace("://", "://CANARYUSER:CANARYPASSWORD@"))
    monkeypatch.setenv("MLOPS_BOT_RETRY_SECONDS", "5")
    push = github_env(github, tmp_path / "runner-push", event="push", payload="push-with-new-branch.payload.json")
    apply_env(monkeypatch, {**push, "GITHUB_REF": "refs/heads/master", "GITHUB_SHA": "6113728f" * 5})
    assert cli.main(["-C", str(project), "ci"]) == 0  # the champion, trained on the plain data URL

    (project / "params.yaml").write_text(f"data_url: {DATA_URL}\n")
    (project / "quality.txt").write_text("0.9\n")
    apply_env(monkeypatch, github_env(github, tmp_path / "runner-pr"))
    assert cli.main(["-C", str(project), "ci"]) == 0  # run, compare, report: comment, status, check run
    assert cli.main(["-C", str(project), "run"]) == 0  # nothing changed: reuses the run
    assert cli.main(["-C", str(project), "compare", "--out", "compare.md"]) == 0
    assert cli.main(["-C", str(project), "report"]) == 0

    printed = capfd.readouterr()
    (comment,) = github.comments_on(2)
    assert "data.example/v2/train.csv" in comment["body"] and "gitlab.example/group/project.git" in comment["body"]
    assert "](http://127.0.0.1:" in comment["body"]  # run links, without the credentials
    sent = json.dumps([(seen.method, seen.path, seen.query, seen.body) for seen in github.seen])
    files = written_by_the_bot(tmp_path, project)
    assert {p.name for p in files} >= {"report.md", "decision.json", "last-run.json", "step_summary.md",
                                      "output.txt", "compare.md"}
    for canary in CANARIES:
        assert canary not in printed.out and canary not in printed.err, canary
        assert canary not in sent, f"{canary} was sent to GitHub"
        for path in files:
            assert canary.encode() not in path.read_bytes(), f"{canary} leaked into {path}"
