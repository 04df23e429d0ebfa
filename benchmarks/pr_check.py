"""The whole PR check, `mlops-bot ci`, beside the obvious alternative (DVC plus one HTTP call), in one run.

One real `mlflow server` and the local GitHub REST stand-in (tests/servers) on 127.0.0.1; a git repository made
from examples/quickstart whose champion was trained and promoted on `main` on that server, and a pull request
that changes a training param (train.C). Every command is a subprocess with the environment of a GitHub Actions
`pull_request` job; wall seconds and CPU seconds (user + system of the command and its children) are measured.

  a. the first check of the PR in a fresh clone: trains, rescores the champion, posts the comment;
  b. the same check in another fresh clone of the same commit: the run is reused from the server, the
     champion's rescoring is reused from the record the first check left on its run, the comment edited;
     split into phases by the same work as separate commands in another fresh clone: `mlops-bot --version`
     (interpreter and start-up), `run` (reuse lookup, download of the outs), `compare` (registry reads, reuse
     of the rescoring), `report` (markdown, summary, comment, status, check run);
  c. a second push with nothing changed (an empty commit, event synchronize) in b's clone: `ci` again;
  d. the alternative on a fresh clone of the same pipeline as dvc.yaml stages, its outputs in a DVC local
     remote: `dvc pull`, `dvc repro` (nothing to run), `dvc metrics diff --md origin/main`, and one POST of the
     table to the stand-in's create-comment endpoint (python urllib, a subprocess of its own).
b, c and d are repeated --runs times (medians), the order of bot and DVC alternating between rounds.

Budget (issue #17): the bot's own overhead (wall time less the time spent in the project's step processes,
timed by a `python` shim first on PATH; none should run) on b and on c under 1.5 s and below d's total.
Run: .venv/bin/python benchmarks/pr_check.py [--runs 3]   (mlflow start-up and the first check: ~1 min;
DVC is installed once into ~/.cache/mlops-bot-bench/dvc-venv by benchmarks/pipeline_vs_dvc.py). Exit 1 if
over budget or if the reuse did not happen.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.pipeline_vs_dvc import dvc_executable, tool_env  # noqa: E402
from tests.servers import mlflow_server  # noqa: E402
from tests.servers.github_server import GitHubServer  # noqa: E402

QUICKSTART = ROOT / "examples" / "quickstart"
PY = sys.executable
BOT = str(Path(PY).with_name("mlops-bot"))
TOKEN = "ghs_" + "Bench1" * 6  # an installation token, as a workflow's GITHUB_TOKEN is
BOT_LOGIN = "github-actions[bot]"
REPO = "Codertocat/Hello-World"
PR = 2
BUDGET_S = 1.5
TIMEOUT_S = 900
GIT = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.invalid", "-c", "init.defaultBranch=main"]
CI_PREFIXES = ("GITHUB_", "GITLAB_", "CI_", "MLOPS_BOT_", "RUNNER_", "MLFLOW_")
SHIM = """\
#!/bin/sh
start=$(date +%s%N)
"{real}" "$@"
status=$?
echo "$start $(date +%s%N)" >> "{log}"
exit $status
"""
DVC_YAML = """\
stages:
  prepare:
    cmd: python prepare.py
    deps: [prepare.py]
    params: [prepare.seed, prepare.test_size]
    outs: [build/train.csv, build/test.csv]
  train:
    cmd: python train.py
    deps: [train.py, build/train.csv]
    params: [train.C, train.max_iter]
    outs: [build/model]
  evaluate:
    cmd: python evaluate.py
    deps: [evaluate.py, build/test.csv, build/model]
    outs: [build/predictions.csv]
    metrics: [{build/metrics.json: {cache: false}}]
"""
POST = """\
import json, sys, urllib.request
url, token = sys.argv[1:3]
request = urllib.request.Request(url, data=json.dumps({"body": sys.stdin.read()}).encode(), method="POST",
                                 headers={"Authorization": f"Bearer {token}", "Accept": "application/vnd.github+json",
                                          "Content-Type": "application/json"})
with urllib.request.urlopen(request, timeout=30) as answer:
    assert answer.status == 201, answer.status
"""


@dataclass(frozen=True)
class Timed:
    wall: float
    cpu: float
    steps: float  # wall seconds inside the project's own step processes (the python shim's log)
    stdout: str


@dataclass(frozen=True)
class Bench:
    work: Path
    env: dict[str, str]  # the job's environment without the event: PATH (shim first), MLFLOW_TRACKING_URI
    github: GitHubServer
    shim_log: Path
    first_run: list[str] = field(default_factory=list)  # the run id the first check produced


def run(argv: list[str], cwd: Path, env: dict[str, str], ok: tuple[int, ...] = (0,), stdin: str | None = None
        ) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, cwd=cwd, env=env, input=stdin, capture_output=True, text=True, timeout=TIMEOUT_S,
                          check=False)
    if done.returncode not in ok:
        raise SystemExit(f"{' '.join(argv)} (in {cwd}) exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done


def step_seconds(log: Path, skip: int) -> float:
    """Wall seconds covered by the step processes logged after line `skip` (overlaps counted once)."""
    lines = log.read_text().splitlines()[skip:] if log.exists() else []
    spans = sorted(tuple(int(n) / 1e9 for n in line.split()) for line in lines)
    total, end = 0.0, 0.0
    for start, stop in spans:
        total += max(0.0, stop - max(start, end))
        end = max(end, stop)
    return total


def timed(bench: Bench, argv: list[str], cwd: Path, env: dict[str, str], ok: tuple[int, ...] = (0,),
          stdin: str | None = None) -> Timed:
    """Run one command; wall and CPU seconds (the command and its children: RUSAGE_CHILDREN deltas)."""
    logged = len(bench.shim_log.read_text().splitlines()) if bench.shim_log.exists() else 0
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = run(argv, cwd, env, ok, stdin)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return Timed(wall, cpu, step_seconds(bench.shim_log, logged), done.stdout)


# setup


def job_env(work: Path, tracking_uri: str) -> tuple[dict[str, str], Path]:
    """The environment of the job's steps, with a `python` shim first on PATH that logs each step's span."""
    env = {k: v for k, v in tool_env(work).items() if not k.startswith(CI_PREFIXES) and k not in ("CI", "GH_TOKEN")}
    shims, log = work / "shim", work / "steps.log"
    shims.mkdir()
    (shims / "python").write_text(SHIM.format(real=PY, log=log))
    (shims / "python").chmod(0o755)
    env.update(PATH=os.pathsep.join((str(shims), str(Path(PY).parent), env.get("PATH", ""))),
               MLFLOW_TRACKING_URI=tracking_uri)
    return env, log


def make_origin(bench: Bench) -> tuple[str, str]:
    """The project on `main` (its champion trained and promoted on the server) and the PR branch that changes
    train.C; returns (main's head, the PR's head)."""
    origin = bench.work / "origin"
    shutil.copytree(QUICKSTART, origin)
    run([*GIT, "init", "-q"], origin, bench.env)
    commit(origin, bench.env, "quickstart")
    run([BOT, "run"], origin, bench.env)
    run([BOT, "promote"], origin, bench.env)
    commit(origin, bench.env, "ml.lock of the champion")
    base = head(origin, bench.env)
    run([*GIT, "checkout", "-q", "-b", "pr"], origin, bench.env)
    set_c(origin, "1")
    commit(origin, bench.env, "train with C=1")
    return base, head(origin, bench.env)


def set_c(project: Path, value: str) -> None:
    params = project / "params.yaml"
    params.write_text("".join(f"  C: {value}\n" if line.startswith("  C:") else line
                              for line in params.read_text().splitlines(keepends=True)))


def commit(repo: Path, env: dict[str, str], message: str, *extra: str) -> None:
    run([*GIT, "add", "-A"], repo, env)
    run([*GIT, "commit", "-q", "-m", message, *extra], repo, env)


def head(repo: Path, env: dict[str, str]) -> str:
    return run(["git", "rev-parse", "HEAD"], repo, env).stdout.strip()


def clone(origin: Path, dest: Path, env: dict[str, str]) -> Path:
    run(["git", "clone", "-q", "--branch", "pr", str(origin), str(dest)], origin.parent, env)
    return dest


def make_dvc_origin(bench: Bench, dvc: str) -> None:
    """The same pipeline as dvc.yaml stages, main's and the PR's outputs pushed to a DVC local remote and
    main's metrics committed (cache: false), as DVC's own guide does it."""
    origin = bench.work / "dvc-origin"
    shutil.copytree(QUICKSTART, origin, ignore=shutil.ignore_patterns("ml.yaml", ".gitignore"))
    (origin / "dvc.yaml").write_text(DVC_YAML)
    run([*GIT, "init", "-q"], origin, bench.env)
    run([dvc, "init", "-q"], origin, bench.env)
    for key, value in (("core.analytics", "false"), ("core.check_update", "false"),
                       ("core.site_cache_dir", str(bench.work / "dvc-site-cache"))):
        run([dvc, "config", key, value], origin, bench.env)
    run([dvc, "remote", "add", "-d", "local", str(bench.work / "dvc-remote")], origin, bench.env)
    for branch, c in (("main", None), ("pr", "1")):
        if c is not None:
            run([*GIT, "checkout", "-q", "-b", branch], origin, bench.env)
            set_c(origin, c)
        run([dvc, "repro", "-q"], origin, bench.env)
        commit(origin, bench.env, f"{branch}: dvc repro")
        run([dvc, "push", "-q"], origin, bench.env)


# the GitHub job


def event_env(bench: Bench, runner: Path, payload: dict[str, object]) -> dict[str, str]:
    """The variables a GitHub Actions runner sets for a step of a pull_request job."""
    runner.mkdir(parents=True)
    (runner / "event.json").write_text(json.dumps(payload))
    return {**bench.env, "GITHUB_ACTIONS": "true", "CI": "true", "GITHUB_EVENT_NAME": "pull_request",
            "GITHUB_EVENT_PATH": str(runner / "event.json"), "GITHUB_REPOSITORY": REPO,
            "GITHUB_API_URL": bench.github.api_url, "GITHUB_SERVER_URL": bench.github.origin,
            "GITHUB_RUN_ID": "9001", "GITHUB_SHA": "f" * 40, "GITHUB_REF": f"refs/pull/{PR}/merge",
            "GITHUB_TOKEN": TOKEN, "GITHUB_STEP_SUMMARY": str(runner / "summary.md"),
            "GITHUB_OUTPUT": str(runner / "output.txt"), "MLOPS_BOT_WRITE_INTERVAL": "0"}


def pr_payload(sha: str, before: str = "") -> dict[str, object]:
    repo = {"full_name": REPO}
    payload: dict[str, object] = {
        "action": "synchronize" if before else "opened", "number": PR,
        "pull_request": {"number": PR, "head": {"sha": sha, "ref": "pr", "repo": repo},
                         "base": {"ref": "main", "repo": repo}},
        "repository": {"full_name": REPO, "default_branch": "main"}}
    if before:
        payload["before"] = before
    return payload


def outputs(runner: Path) -> dict[str, str]:
    text = (runner / "output.txt").read_text() if (runner / "output.txt").exists() else ""
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line and "<<" not in line)


def bot_comment(bench: Bench) -> str:
    mine = [c for c in bench.github.comments_on(PR) if c["login"] == BOT_LOGIN and "mlops-bot:report" in c["body"]]
    return str(mine[-1]["body"]) if mine else ""


def check_ci(bench: Bench, name: str, runner: Path, timing: Timed, restored: bool, problems: list[str]) -> None:
    """What a check after the first must show: the first check's run (restored from the server, `reused`, in a
    fresh clone; the workspace's own cache after a push), the rescoring reused, no step run."""
    found = outputs(runner)
    if found.get("run-id") != bench.first_run[0]:
        problems.append(f"{name}: not the first check's run {bench.first_run[0]} (outputs: {found})")
    if restored and found.get("reused") != "true":
        problems.append(f"{name}: the run was not restored from the server (outputs: {found})")
    if "reused from" not in bot_comment(bench):
        problems.append(f"{name}: the comment does not say the champion's rescoring was reused")
    if timing.steps > 0:
        problems.append(f"{name}: the project's step processes ran for {timing.steps:.2f} s")


def first_check(bench: Bench, pr_head: str) -> Timed:
    project = clone(bench.work / "origin", bench.work / "clone-a", bench.env)
    runner = bench.work / "runner-a"
    first = timed(bench, [BOT, "ci"], project, event_env(bench, runner, pr_payload(pr_head)), ok=(0, 1))
    bench.first_run.append(outputs(runner).get("run-id", ""))
    return first


def bot_round(bench: Bench, pr_head: str, i: int, problems: list[str]) -> dict[str, Timed]:
    """b (ci in a fresh clone), its phases (in another fresh clone) and c (an empty commit, synchronize)."""
    found: dict[str, Timed] = {}
    project = clone(bench.work / "origin", bench.work / f"clone-b{i}", bench.env)
    runner = bench.work / f"runner-b{i}"
    found["ci"] = timed(bench, [BOT, "ci"], project, event_env(bench, runner, pr_payload(pr_head)), ok=(0, 1))
    check_ci(bench, f"round {i + 1}, b", runner, found["ci"], True, problems)

    phases = clone(bench.work / "origin", bench.work / f"clone-p{i}", bench.env)
    env = event_env(bench, bench.work / f"runner-p{i}", pr_payload(pr_head))
    found["--version"] = timed(bench, [BOT, "--version"], phases, env)
    found["run"] = timed(bench, [BOT, "run"], phases, env)
    found["compare"] = timed(bench, [BOT, "compare", "--json", "--out", "report.md"], phases, env, ok=(0, 1))
    (phases / "decision.json").write_text(found["compare"].stdout)
    found["report"] = timed(bench, [BOT, "report", "--decision", "decision.json"], phases, env, ok=(0, 1))

    commit(project, bench.env, "nothing changed", "--allow-empty")
    runner = bench.work / f"runner-c{i}"
    env = event_env(bench, runner, pr_payload(head(project, bench.env), before=pr_head))
    found["push"] = timed(bench, [BOT, "ci"], project, env, ok=(0, 1))
    check_ci(bench, f"round {i + 1}, c", runner, found["push"], False, problems)
    return found


def dvc_round(bench: Bench, dvc: str, i: int) -> dict[str, Timed]:
    """d: dvc pull + dvc repro + dvc metrics diff --md + one POST of the table, on a fresh clone."""
    project = clone(bench.work / "dvc-origin", bench.work / f"dvc-clone-{i}", bench.env)
    env = bench.env
    found = {"pull": timed(bench, [dvc, "pull", "-q"], project, env),
             "repro": timed(bench, [dvc, "repro"], project, env)}
    if "up to date" not in found["repro"].stdout:
        raise SystemExit(f"dvc repro ran something on a fresh clone:\n{found['repro'].stdout}")
    found["diff"] = timed(bench, [dvc, "metrics", "diff", "--md", "origin/main"], project, env)
    url = f"{bench.github.api_url}/repos/{REPO}/issues/{PR}/comments"
    found["post"] = timed(bench, [PY, "-c", POST, url, TOKEN], project, env, stdin=found["diff"].stdout)
    return found


# the report


def median(rounds: list[dict[str, Timed]], key: str) -> Timed:
    picked = [r[key] for r in rounds]
    return Timed(statistics.median(t.wall for t in picked), statistics.median(t.cpu for t in picked),
                 statistics.median(t.steps for t in picked), "")


def total(rounds: list[dict[str, Timed]], keys: tuple[str, ...]) -> Timed:
    """The median over rounds of the sum of `keys` in each round."""
    sums = [Timed(sum(r[k].wall for k in keys), sum(r[k].cpu for k in keys), sum(r[k].steps for k in keys), "")
            for r in rounds]
    return median([{"sum": s} for s in sums], "sum")


def row(name: str, t: Timed) -> str:
    own = t.wall - t.steps
    return f"| {name} | {t.wall:.2f} s | {t.cpu:.2f} s | {t.steps:.2f} s | {own:.2f} s |"


def table(first: Timed, bot: list[dict[str, Timed]], dvc: list[dict[str, Timed]], runs: int) -> list[str]:
    lines = ["| check | wall | CPU | in step processes | own (wall - steps) |", "|---|---:|---:|---:|---:|",
             row("a. first check, fresh clone (trains, rescores the champion)", first),
             row(f"b. same commit, fresh clone: `mlops-bot ci` (median of {runs})", median(bot, "ci"))]
    for key, what in (("--version", "interpreter + start-up"), ("run", "reuse lookup + outs"),
                      ("compare", "registry + rescoring reuse"), ("report", "comment, status, check run")):
        lines.append(row(f"&nbsp;&nbsp;b phase `mlops-bot {key}` ({what})", median(bot, key)))
    lines.append(row("&nbsp;&nbsp;b phases, sum", total(bot, ("--version", "run", "compare", "report"))))
    lines.append(row(f"c. second push, nothing changed: `mlops-bot ci` (median of {runs})", median(bot, "push")))
    for key, what in (("pull", "`dvc pull`"), ("repro", "`dvc repro` (nothing to run)"),
                      ("diff", "`dvc metrics diff --md origin/main`"), ("post", "one POST of the table (python)")):
        lines.append(row(f"&nbsp;&nbsp;d piece {what}", median(dvc, key)))
    lines.append(row(f"d. alternative, fresh clone: total (median of {runs})", total(dvc, ("pull", "repro", "diff",
                                                                                          "post"))))
    return lines


def verdict(bot: list[dict[str, Timed]], dvc: list[dict[str, Timed]]) -> list[str]:
    alternative = total(dvc, ("pull", "repro", "diff", "post")).wall
    problems = []
    for key, name in (("ci", "b, reused check"), ("push", "c, second push")):
        t = median(bot, key)
        own = t.wall - t.steps
        if own >= BUDGET_S or own >= alternative:
            problems.append(f"{name}: own overhead {own:.2f} s (budget {BUDGET_S} s and below the alternative's "
                            f"{alternative:.2f} s)")
    return problems


def measure(bench: Bench, pr_head: str, dvc: str, runs: int) -> int:
    problems: list[str] = []
    print("first PR check (trains, rescores the champion) ...", file=sys.stderr, flush=True)
    first = first_check(bench, pr_head)
    bot: list[dict[str, Timed]] = []
    alternative: list[dict[str, Timed]] = []
    for i in range(runs):
        print(f"round {i + 1} of {runs} ...", file=sys.stderr, flush=True)
        if i % 2:
            alternative.append(dvc_round(bench, dvc, i))
        bot.append(bot_round(bench, pr_head, i, problems))
        if not i % 2:
            alternative.append(dvc_round(bench, dvc, i))
    print("\n".join(table(first, bot, alternative, runs)))
    print(f"\nload average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; "
          f"{len(bench.github.seen)} requests to the GitHub stand-in")
    problems += verdict(bot, alternative)
    problems += [f"GitHub stand-in: {v}" for v in bench.github.violations]
    print("within budget" if not problems else "OVER BUDGET or not reused:\n  " + "\n  ".join(problems))
    return 1 if problems else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="rounds of b, c and d (medians reported; default 3)")
    args = parser.parse_args()
    dvc = str(dvc_executable())
    work = Path(tempfile.mkdtemp(prefix="mlops-bot-pr-check-"))
    github = GitHubServer(REPO).start()
    server = None
    try:
        print("starting mlflow server ...", file=sys.stderr, flush=True)
        server = mlflow_server.start(work / "mlflow")
        env, shim_log = job_env(work, server.uri)
        bench = Bench(work, env, github, shim_log)
        github.add_account(TOKEN, BOT_LOGIN, kind="installation")
        print("main's champion, the PR, the DVC project ...", file=sys.stderr, flush=True)
        pr_head = make_origin(bench)[1]
        github.add_pull(PR, pr_head, head_ref="pr", base_ref="main")
        make_dvc_origin(bench, dvc)
        return measure(bench, pr_head, dvc, args.runs)
    finally:
        if server is not None:
            server.stop()
        github.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
