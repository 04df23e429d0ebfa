"""A small project for `mlops-bot drift`: a git repository whose pipeline trains on a CSV, trained with the real
`mlops-bot run` and made champion, and current batches that drift or do not.

`source="outs"`: a prepare step writes build/train.csv from data/raw.csv, so the training data is an out of the
champion's run; `source="git"`: the train step reads data/train.csv, a file of the repository, so it is read
from git at the run's commit. The data are quantiles of a normal distribution (no randomness): a batch of other
quantiles does not drift, one shifted by a standard deviation or more does, in `x` alone.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from statistics import NormalDist

from mlops_bot import cli
from mlops_bot.config import load_config
from mlops_bot.config.model import Config
from mlops_bot.pipeline.lastrun import read_last_run
from mlops_bot.registry.base import Registry
from mlops_bot.support.state import state_path
from tests.helpers.git import git

PY = json.dumps(sys.executable)
PREPARE = json.dumps("import shutil, os; os.makedirs('build', exist_ok=True); "
                     "shutil.copy('data/raw.csv', 'build/train.csv')")
TRAIN = json.dumps("import os; os.makedirs('build/model', exist_ok=True); "
                   "open('build/model/model.txt', 'w').write('m')")
COLORS = ("red", "green", "blue")

ML_YAML = """\
version: 1
model: {{name: {model}, artifact: build/model}}
tracking: {{uri: "{uri}", experiment: {model}}}
pipeline:
{steps}
  evaluate:
    cmd: [{py}, -c, "import json; json.dump({{'accuracy': 0.9}}, open('build/metrics.json', 'w'))"]
    deps: [build/model]
    metrics: build/metrics.json
compare:
  criteria:
    - {{metric: accuracy, threshold: 0.5}}
monitor:
{monitor}
"""
OUTS_STEPS = """\
  prepare:
    cmd: [{py}, -c, {prepare}]
    deps: [data/raw.csv]
    outs: [build/train.csv]
  train:
    cmd: [{py}, -c, {train}]
    deps: [build/train.csv]
    outs: [build/model]
"""
GIT_STEPS = """\
  train:
    cmd: [{py}, -c, {train}]
    deps: [data/train.csv]
    outs: [build/model]
"""
MONITOR = "  current: data/current.csv\n  drift_when: {features: 1}\n"


def table(rows: int, shift: float = 0.0, offset: float = 0.5, color: bool = True) -> str:
    """CSV of x (normal quantiles + shift), y (normal quantiles) and, unless `color` is False, color."""
    normal = NormalDist()
    lines = ["x,y,color" if color else "x,y"]
    for i in range(rows):
        x = normal.inv_cdf((i + offset) / rows) + shift
        y = normal.inv_cdf(((i * 7) % rows + offset) / rows)
        lines.append(f"{x:.6f},{y:.6f}" + (f",{COLORS[i % 3]}" if color else ""))
    return "\n".join(lines) + "\n"


def write_project(root: Path, model: str, uri: str = "local", source: str = "outs", monitor: str = MONITOR) -> Path:
    """The project, committed to a fresh git repository (build/ and .mlops-bot/ ignored); `monitor`: the lines
    of its monitor: block, indented by two spaces."""
    root.mkdir(parents=True, exist_ok=True)
    steps = (OUTS_STEPS if source == "outs" else GIT_STEPS).format(py=PY, train=TRAIN, prepare=PREPARE)
    (root / "ml.yaml").write_text(ML_YAML.format(model=model, uri=uri, steps=steps.rstrip("\n"), py=PY,
                                                 monitor=monitor.rstrip("\n")))
    (root / "data").mkdir(exist_ok=True)
    (root / "data" / ("raw.csv" if source == "outs" else "train.csv")).write_text(table(400))
    (root / ".gitignore").write_text("build/\n.mlops-bot/\n")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "the project")
    return root


def train_champion(root: Path, registry: Registry) -> tuple[str, str]:
    """`mlops-bot run`, then the run registered as a version and made champion: (version, run id)."""
    assert cli.main(["-C", str(root), "run"]) == 0
    config = load_config(root / "ml.yaml", env={})
    last = read_last_run(state_path(root))
    assert last is not None
    run = registry.get_run(last.run_id)
    registry.get_or_create_registered_model(config.model.name)
    version = registry.create_model_version(config.model.name, f"{run.artifact_uri}/model", run.run_id).version
    registry.set_alias(config.model.name, "champion", version)
    return version, run.run_id


def config_of(root: Path) -> Config:
    return load_config(root / "ml.yaml", env={})


def drift_json(root: Path, *args: str) -> tuple[int, dict[str, object]]:
    """`mlops-bot drift --json ARGS` in-process: (exit code, the document; {} when none was printed)."""
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli.main(["-C", str(root), "drift", "--json", *args])
    text = out.getvalue()
    return code, (json.loads(text) if text.strip() else {})


class DataServer:
    """Serves GET requests on 127.0.0.1 from `files` (path -> CSV text); any other path answers 404."""

    def __init__(self, files: dict[str, str]) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.files, self.requests = files, list[str]()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.requests.append(self.path)
                body = outer.files.get(self.path.split("?")[0])
                data = (body or "not found").encode()
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
