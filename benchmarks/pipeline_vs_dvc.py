"""`mlops-bot run` beside `dvc repro` on the same 3-stage pipeline, measured side by side in one run.

Scenarios: the first run, a no-op re-run, a re-run after touching a 1 GB input without changing it, and a
re-run after changing one byte of it. Both tools run as real subprocesses (the `mlops-bot` CLI, the `dvc`
CLI) on identical projects whose 1 GB input is one hard-linked file, so both see exactly the same change.
Budget (DESIGN.md): the no-op re-run at least 10x faster than `dvc repro`; re-hashing near disk speed.

DVC is installed into its own virtualenv under ~/.cache/mlops-bot-bench (not a project dependency), with
its analytics and update check switched off and their endpoints pointed at 127.0.0.1.
mlops-bot is measured as users install it (a wheel of this checkout in its own virtualenv there), or with
--install editable as the development venv has it.
Run: .venv/bin/python benchmarks/pipeline_vs_dvc.py [--size-mb 1024] [--runs 5] [--install regular|editable]
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
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "mlops-bot-bench"
TIMEOUT_S = 900  # per command: the whole benchmark stays bounded even on a slow disk
PY = sys.executable
ROOT = Path(__file__).resolve().parents[1]

SCRIPTS = {
    "prepare.py": """\
        import hashlib, os, pathlib
        path = "data/big.bin"
        with open(path, "rb") as handle:  # the tail: a changed last byte changes the features
            handle.seek(max(os.path.getsize(path) - (1 << 20), 0))
            tail = hashlib.sha1(handle.read()).hexdigest()
        pathlib.Path("build").mkdir(exist_ok=True)
        pathlib.Path("build/features.txt").write_text(f"{os.path.getsize(path)} {tail}\\n")
        """,
    "train.py": """\
        import pathlib, yaml
        c = yaml.safe_load(open("params.yaml"))["C"]
        features = pathlib.Path("build/features.txt").read_text()
        pathlib.Path("build/model").mkdir(parents=True, exist_ok=True)
        pathlib.Path("build/model/model.txt").write_text(f"C={c} {features}")
        """,
    "evaluate.py": """\
        import json, pathlib
        model = pathlib.Path("build/model/model.txt").read_text()
        json.dump({"accuracy": 0.5 + len(model) % 7 / 100}, open("build/metrics.json", "w"))
        """,
}

ML_YAML = f"""\
version: 1
model: {{name: bench, artifact: build/model}}
tracking: {{uri: local, experiment: bench}}
params: params.yaml
pipeline:
  prepare: {{cmd: {PY} prepare.py, deps: [prepare.py, data/big.bin], outs: [build/features.txt]}}
  train: {{cmd: {PY} train.py, deps: [train.py, build/features.txt], params: [C], outs: [build/model]}}
  evaluate: {{cmd: {PY} evaluate.py, deps: [evaluate.py, build/model], metrics: build/metrics.json}}
"""

DVC_YAML = f"""\
stages:
  prepare: {{cmd: {PY} prepare.py, deps: [prepare.py, data/big.bin], outs: [build/features.txt]}}
  train: {{cmd: {PY} train.py, deps: [train.py, build/features.txt], params: [C], outs: [build/model]}}
  evaluate:
    cmd: {PY} evaluate.py
    deps: [evaluate.py, build/model]
    metrics: [{{build/metrics.json: {{cache: false}}}}]
"""

NOWHERE = "http://127.0.0.1:9/"  # DVC's analytics and updater endpoints, should anything slip through


def dvc_executable() -> Path:
    venv = CACHE / "dvc-venv"
    dvc = venv / "bin" / "dvc"
    if not dvc.exists():
        print(f"installing DVC into {venv} (once) ...", file=sys.stderr, flush=True)
        subprocess.run([PY, "-m", "venv", "--clear", str(venv)], check=True, timeout=TIMEOUT_S)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "dvc"], check=True, timeout=TIMEOUT_S)
    return dvc


def bot_executable(install: str) -> str:
    """The `mlops-bot` to measure: "regular" installs this checkout as users get it (a wheel, not editable) into
    its own virtualenv under the cache (dependencies once, the bot itself again each time); "editable" is the
    development venv's, whose import finder adds a few ms to every start."""
    if install == "editable":
        return shutil.which("mlops-bot", path=str(Path(PY).parent)) or "mlops-bot"
    venv = CACHE / "bot-venv"
    pip = [str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check"]
    if not (venv / "bin" / "mlops-bot").exists():
        print(f"installing mlops-bot and its dependencies into {venv} (once) ...", file=sys.stderr, flush=True)
        subprocess.run([PY, "-m", "venv", "--clear", str(venv)], check=True, timeout=TIMEOUT_S)
        subprocess.run([*pip, str(ROOT)], check=True, timeout=TIMEOUT_S)
    else:  # this checkout's code, as a wheel
        subprocess.run([*pip, "--no-deps", "--force-reinstall", str(ROOT)], check=True, timeout=TIMEOUT_S)
    return str(venv / "bin" / "mlops-bot")


def tool_env(work: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "MLFLOW_TRACKING_URI")}
    # Byte-compiled modules for both tools (DVC's were compiled by pip; mlops-bot's go to a prefix dir).
    env.update(PYTHONPYCACHEPREFIX=str(work / "pycache"), DVC_NO_ANALYTICS="1",
               DVC_ANALYTICS_ENDPOINT=NOWHERE, DVC_UPDATER_ENDPOINT=NOWHERE)
    return env


def make_project(root: Path, big: Path) -> None:
    (root / "data").mkdir(parents=True)
    os.link(big, root / "data" / "big.bin")
    for name, text in SCRIPTS.items():
        (root / name).write_text(textwrap.dedent(text))
    (root / "params.yaml").write_text("C: 0.5\n")


def write_big(path: Path, size_mb: int) -> None:
    block = os.urandom(1 << 20)
    with open(path, "wb") as handle:
        for i in range(size_mb):
            handle.write(i.to_bytes(8, "little") + block[8:])


class Tool:
    def __init__(self, name: str, argv: list[str], cwd: Path, env: dict[str, str]) -> None:
        self.name, self.argv, self.cwd, self.env = name, argv, cwd, env

    def run(self) -> tuple[float, float]:
        """Wall seconds and CPU seconds (user + system of the tool and its children: steady under load)."""
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        done = subprocess.run(self.argv, cwd=self.cwd, env=self.env, capture_output=True, text=True,
                              timeout=TIMEOUT_S, check=False)
        elapsed = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if done.returncode != 0:
            raise SystemExit(f"{self.name} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        return elapsed, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def setup(work: Path, size_mb: int, install: str) -> tuple[Tool, Tool, Path]:
    big = work / "big.bin"
    write_big(big, size_mb)
    env = tool_env(work)
    mb_dir, dvc_dir = work / "mlops-bot", work / "dvc"
    make_project(mb_dir, big)
    (mb_dir / "ml.yaml").write_text(ML_YAML)
    make_project(dvc_dir, big)
    (dvc_dir / "dvc.yaml").write_text(DVC_YAML)
    dvc = str(dvc_executable())
    subprocess.run([dvc, "init", "--no-scm", "-q"], cwd=dvc_dir, env=env, check=True, timeout=TIMEOUT_S)
    for key, value in (("core.analytics", "false"), ("core.check_update", "false"),
                       ("core.site_cache_dir", str(work / "dvc-site-cache"))):
        subprocess.run([dvc, "config", key, value], cwd=dvc_dir, env=env, check=True, timeout=TIMEOUT_S)
    return (Tool("mlops-bot run", [bot_executable(install), "run"], mb_dir, env),
            Tool("dvc repro", [dvc, "repro", "-q"], dvc_dir, env), big)


Timing = tuple[float, float, float, float]  # ours wall, theirs wall, ours cpu, theirs cpu


def both(tools: tuple[Tool, Tool], before: Callable[[], None], rounds: int) -> Timing:
    """Medians per tool; the order alternates so neither always gets the warmer page cache."""
    wall: dict[str, list[float]] = {t.name: [] for t in tools}
    cpu: dict[str, list[float]] = {t.name: [] for t in tools}
    for i in range(rounds):
        before()
        for tool in tools if i % 2 == 0 else tools[::-1]:
            seconds, cpu_seconds = tool.run()
            wall[tool.name].append(seconds)
            cpu[tool.name].append(cpu_seconds)
    ours, theirs = tools[0].name, tools[1].name
    return (statistics.median(wall[ours]), statistics.median(wall[theirs]),
            statistics.median(cpu[ours]), statistics.median(cpu[theirs]))


def read_speed(path: Path) -> float:
    start = time.perf_counter()
    with open(path, "rb", buffering=0) as handle:
        while handle.read(1 << 24):
            pass
    return path.stat().st_size / (1 << 20) / (time.perf_counter() - start)


def hash_speed(path: Path) -> tuple[float, float]:
    """Wall and CPU seconds (all threads) of mlops-bot's hasher on `path` alone, in this process: the floor of
    the touched-input re-run, beside one plain read."""
    from mlops_bot.pipeline.hashing import Hasher

    with tempfile.TemporaryDirectory() as state:
        before = resource.getrusage(resource.RUSAGE_SELF)
        start = time.perf_counter()
        Hasher(path.parent, Path(state)).hash(path.name)
        elapsed = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_SELF)
    return elapsed, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, default=1024, help="size of the big input (default 1024)")
    parser.add_argument("--runs", type=int, default=5, help="no-op re-runs per tool (median reported)")
    parser.add_argument("--install", choices=("regular", "editable"), default="regular",
                        help="measure mlops-bot installed as users get it (default) or the editable dev venv's")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mlops-bot-vs-dvc-"))
    try:
        tools_ = setup(work, args.size_mb, args.install)
        tools, big = tools_[:2], tools_[2]
        rows = [("first run (3 steps)", both(tools, lambda: None, 1))]
        # A re-run comes a while after the run that wrote the outs; files younger than the 2 s timestamp
        # window are always re-hashed (the racy-file rule), so wait past it, then warm both tools once.
        time.sleep(2.5)
        both(tools, lambda: None, 1)
        rows.append((f"no-op re-run (median of {args.runs})", both(tools, lambda: None, args.runs)))

        def touch() -> None:
            os.utime(big)

        rows.append((f"{args.size_mb} MB input touched, unchanged", both(tools, touch, 2)))
        flips = iter(range(1, 1000))

        def change_byte() -> None:
            with open(big, "r+b") as handle:
                handle.seek(-1, os.SEEK_END)
                handle.write(bytes([next(flips) % 256]))

        rows.append((f"{args.size_mb} MB input, one byte changed", both(tools, change_byte, 2)))
        report(rows, read_speed(big), args.size_mb, hash_speed(big))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def report(rows: list[tuple[str, Timing]], speed: float, size_mb: int, hashed: tuple[float, float]) -> None:
    print(f"{'scenario':40} {'mlops-bot s':>11} {'dvc repro s':>11} {'ratio':>7}   {'cpu: ours':>9} "
          f"{'dvc':>7} {'ratio':>7}")
    for name, (ours, theirs, ours_cpu, theirs_cpu) in rows:
        print(f"{name:40} {ours:11.3f} {theirs:11.3f} {theirs / ours:6.1f}x   {ours_cpu:9.3f} {theirs_cpu:7.3f} "
              f"{theirs_cpu / ours_cpu:6.1f}x")
    print(f"reading the {size_mb} MB input once (page cache warm): {speed:.0f} MB/s = {size_mb / speed:.2f} s; "
          f"mlops-bot's whole re-run after the touch: {rows[2][1][0]:.2f} s")
    print(f"hashing it alone (blake3, as `run` does): {hashed[0]:.2f} s wall, {hashed[1]:.2f} s CPU")
    print(f"load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    keys = ("ours_s", "dvc_s", "ours_cpu_s", "dvc_cpu_s")
    print(json.dumps({name: dict(zip(keys, (round(v, 4) for v in t), strict=True)) for name, t in rows}))


if __name__ == "__main__":
    sys.exit(main())
