"""API economy of one PR check: GitHub, GitLab and registry requests as comments and model versions grow.

One PR check here = `compare` against the champion in a real `mlflow server` (registry requests counted at
the httpx transport) + `report` (comment + status + check run) to the local GitHub server and to the local
GitLab server (requests counted by the servers, which also check them against the forges' contracts).
Existing comments grow 0 -> 250 -> 10,000 (other people's, some quoting the marker, with the bot's own comment
last: the worst case for a scan) and model versions 1 -> 40 -> 160. The PR was checked before this push: the
commit before it carries the bot's status, whose target_url is the bot's comment (as `report` leaves it).

Budget (issue #17): at most 5 requests to each forge whatever the number of comments (the status of the
commit before the push, the comment, its edit, the status, the check run); registry requests do not grow
with the number of versions (the chart reads at most report.history earlier champions). GitLab's column is
for a token whose account is known (MLOPS_BOT_LOGIN); one of unknown account asks GET /user once more.
Run: .venv/bin/python benchmarks/api_calls.py   (starts mlflow once: 15-40 s). Exit 1 if over budget.
"""

from __future__ import annotations

import sys
import tempfile
import textwrap
from dataclasses import replace
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mlops_bot.ci.context import CIContext  # noqa: E402
from mlops_bot.config import load_config  # noqa: E402
from mlops_bot.decide.decision import Decision  # noqa: E402
from mlops_bot.flows.compare import compare_registry  # noqa: E402
from mlops_bot.flows.report import Delivery, publish  # noqa: E402
from mlops_bot.forges.github import GitHubForge, GitHubSettings  # noqa: E402
from mlops_bot.forges.gitlab import GitLabForge, GitLabSettings  # noqa: E402
from mlops_bot.lifecycle.champion import PROMOTED_TAG  # noqa: E402
from mlops_bot.registry.mlflow.client import MlflowRegistry  # noqa: E402
from tests.servers import mlflow_server  # noqa: E402
from tests.servers.github_server import GitHubServer  # noqa: E402
from tests.servers.gitlab_server import GitLabServer  # noqa: E402

COMMENTS = (0, 250, 10_000)
VERSIONS = (1, 40, 160)
BUDGET = 5  # requests to each forge
HEAD = "ec26c3e57ca3a959ca5aad62de7213c562f8c821"
PREVIOUS = "f95f852bd8fca8fcc58a9a2d6c842781e32a215e"  # the head before this push (`before` on synchronize)
TOKEN = "ghs_" + "Bench0" * 6
GITLAB_TOKEN = "glpat-" + "Bench0" * 4
GITLAB_BOT = "project_42_bot_1"
MARKER_OF = "<!-- mlops-bot:report model={} -->"
ML_YAML = """\
version: 1
model: {{name: {model}, artifact: build/model}}
tracking: {{uri: "{uri}", experiment: {model}}}
pipeline:
  train: {{cmd: [python, train.py], outs: [build/model]}}
  evaluate: {{cmd: [python, evaluate.py], deps: [build/model], metrics: build/metrics.json}}
compare:
  criteria:
    - {{metric: accuracy, threshold: 0.8, min_absolute_change: 0.001}}
    - {{metric: latency_ms, greater_is_better: false, max_regression: {{relative: 0.1}}}}
"""


class Counting(httpx.BaseTransport):
    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.count = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.count += 1
        return self.inner.handle_request(request)


def seed_registry(uri: str, model: str, versions: int) -> str:
    """`versions` model versions (every third tagged as an earlier champion, the last one the champion) and a
    challenger run; returns the challenger's run id."""
    registry = MlflowRegistry(uri, {})
    experiment = registry.get_or_create_experiment(model).experiment_id
    registry.get_or_create_registered_model(model)
    version = None
    for i in range(versions):
        run = registry.create_run(experiment, f"v{i}")
        registry.log_batch(run.run_id, metrics={"accuracy": 0.85 + i / 10_000, "latency_ms": 10.0})
        registry.update_run(run.run_id, "FINISHED")
        version = registry.create_model_version(model, f"runs:/{run.run_id}/model", run.run_id)
        if i % 3 == 0:
            registry.set_model_version_tag(model, version.version, PROMOTED_TAG, str(1_700_000_000 + i))
    assert version is not None
    registry.set_alias(model, "champion", version.version)
    challenger = registry.create_run(experiment, "challenger")
    registry.log_batch(challenger.run_id, metrics={"accuracy": 0.97, "latency_ms": 10.5})
    registry.update_run(challenger.run_id, "FINISHED")
    registry.close()
    return challenger.run_id


def one_check(uri: str, work: Path, model: str, run_id: str, comments: int) -> tuple[int, int, int, int]:
    """(GitHub requests, GitLab requests, GitLab requests for a token of unknown account, registry requests) of
    one compare + report."""
    (work / "ml.yaml").write_text(ML_YAML.format(model=model, uri=uri))
    config = load_config(work / "ml.yaml")
    counting = Counting()
    registry = MlflowRegistry(uri, {}, transport=counting)
    try:
        decision = compare_registry(config, registry, run_id)
    finally:
        registry.close()
    github = on_github(decision, Delivery(CIContext("github", "pull_request", "check", ""), {}, work, config.report),
                       comments)
    gitlab = [on_gitlab(decision, Delivery(CIContext("gitlab", "merge_request_event", "check", ""), {}, work,
                                           config.report), comments, login) for login in (GITLAB_BOT, "")]
    return github, gitlab[0], gitlab[1], counting.count


def others(comments: int, marker: str) -> list[tuple[str, str]]:
    return [(f"> {marker}" if i % 97 == 5 else f"comment {i}", f"reviewer{i % 9}") for i in range(comments)]


def on_github(decision: Decision, delivery: Delivery, comments: int) -> int:
    github = GitHubServer().start()
    try:
        github.add_account(TOKEN, "github-actions[bot]", kind="installation")
        github.add_pull(2, HEAD)
        marker = MARKER_OF.format(decision.model)
        for text, login in others(comments, marker):
            github.add_comment(2, text, login)
        own = github.add_comment(2, f"{marker}\nearlier report", "github-actions[bot]")
        github.add_status(PREVIOUS, f"mlops-bot/{decision.model}", f"{github.origin}/{github.repository}/pull/2"
                          f"#issuecomment-{own}")
        context = replace(delivery.context, pr_number=2, sha=HEAD, previous_sha=PREVIOUS,
                          repository=github.repository, server_url=github.origin)
        forge = GitHubForge(GitHubSettings(api_url=github.api_url, repository=github.repository, number=2,
                                           write_interval=0), TOKEN)
        publish(decision, replace(delivery, context=context, forge=forge))
        assert not github.violations, github.violations
        assert [c["id"] for c in github.comments_on(2) if c["login"] == "github-actions[bot]"] == [own]
        return len(github.seen)
    finally:
        github.stop()


def on_gitlab(decision: Decision, delivery: Delivery, comments: int, login: str) -> int:
    gitlab = GitLabServer("group/project", 42).start()
    try:
        gitlab.add_account(GITLAB_TOKEN, GITLAB_BOT)
        gitlab.add_merge_request(7, sha=PREVIOUS)
        gitlab.push(7, HEAD)
        marker = MARKER_OF.format(decision.model)
        for text, username in others(comments, marker):
            gitlab.add_note(7, text, username)
        own = gitlab.add_note(7, f"{marker}\nearlier report", GITLAB_BOT)
        gitlab.add_status(PREVIOUS, f"mlops-bot/{decision.model}", f"{gitlab.url}/group/project/-/merge_requests/7"
                          f"#note_{own}")
        context = replace(delivery.context, pr_number=7, sha=HEAD, repository="group/project", project_id="42",
                          server_url=gitlab.url)
        settings = GitLabSettings(server_url=gitlab.url, project="42", project_path="group/project", mr_iid=7,
                                  login=login)
        publish(decision, replace(delivery, context=context, forge=GitLabForge(settings, GITLAB_TOKEN)))
        assert not gitlab.violations, gitlab.violations
        assert [n["id"] for n in gitlab.notes_on(7) if n["username"] == GITLAB_BOT] == [own]
        return len(gitlab.seen)
    finally:
        gitlab.stop()


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="mlops-bot-api-") as tmp:
        server = mlflow_server.start(Path(tmp) / "mlflow")
        try:
            rows = []
            for versions in VERSIONS:
                model = f"bench-{versions}"
                run_id = seed_registry(server.uri, model, versions)
                for comments in COMMENTS:
                    work = Path(tmp) / f"{model}-{comments}"
                    work.mkdir()
                    rows.append((comments, versions, *one_check(server.uri, work, model, run_id, comments)))
        finally:
            server.stop()
    print(textwrap.dedent("""
        comments  versions  GitHub requests  GitLab requests  GitLab, account unknown  budget  registry requests"""))
    over = False
    for comments, versions, gh, gl, gl_user, reg in rows:
        over |= gh > BUDGET or gl > BUDGET or gl_user > BUDGET + 1  # + GET /user, once
        print(f"{comments:8}  {versions:8}  {gh:15}  {gl:15}  {gl_user:23}  {BUDGET:6}  {reg:17}")
    # The chart reads at most report.history earlier champions: fewer versions than that cost less, more
    # versions cost nothing more.
    by_versions = {v: {r[5] for r in rows if r[1] == v} for v in VERSIONS}
    many = [by_versions[v] for v in VERSIONS[1:]]
    if any(len(c) != 1 for c in by_versions.values()) or any(c != many[0] for c in many):
        over = True
        print(f"registry requests grow with the number of versions: {by_versions}")
    print("within budget" if not over else "OVER BUDGET")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
