"""The promotion tests' project: a one-step pipeline whose runs are made directly in the registry (see
`registries.make_run`), a deploy target that records each deployed version in deployed.txt, and the compare +
promote path as a test drives it."""

from __future__ import annotations

import textwrap
from pathlib import Path

from mlops_bot.ci.context import CIContext
from mlops_bot.config import load_config
from mlops_bot.config.model import Config
from mlops_bot.flows.compare import compare_registry
from mlops_bot.flows.promote import promote_flow
from mlops_bot.registry.base import Registry

ML_YAML = """\
version: 1
model: {{name: {model}, artifact: build/model}}
tracking: {{uri: "{uri}", experiment: {model}}}
pipeline:
  evaluate:
    cmd: [python, -c, "pass"]
    outs: [build/model]
    metrics: build/metrics.json
compare:
  criteria:
    - {{metric: accuracy, threshold: 0.5, min_absolute_change: 0.01}}
deploy:
{deploy}
"""
DEPLOY_RECORD = """\
  - name: record
    type: command
    cmd: "echo $MODEL_VERSION >> deployed.txt && test ! -e fail-deploy"
"""
# A training step whose accuracy is the number in quality.txt: a test changes the model's quality with one file.
QUALITY_TRAIN = """\
import json, os
accuracy = float(open("quality.txt").read())
os.makedirs("build/model", exist_ok=True)
open("build/model/weights.txt", "w").write(str(accuracy))
json.dump({"accuracy": accuracy}, open("build/metrics.json", "w"))
"""
LOCAL = CIContext(platform="local", event="local", flow="promote", reason="test")


def write_project(root: Path, model: str, uri: str = "local", deploy: str = DEPLOY_RECORD, rules: str = "") -> Config:
    """`rules`: lines of an `on:` list (none when empty)."""
    root.mkdir(parents=True, exist_ok=True)
    text = ML_YAML.format(model=model, uri=uri, deploy=deploy or "  []") + (f"on:\n{rules}\n" if rules else "")
    (root / "ml.yaml").write_text(textwrap.dedent(text))
    return load_config(root / "ml.yaml", env={})


def deployed(root: Path) -> list[str]:
    """The versions DEPLOY_RECORD deployed, in order."""
    path = root / "deployed.txt"
    return path.read_text().split() if path.exists() else []


def promote_run(config: Config, registry: Registry, run_id: str) -> tuple[bool, bool, str]:
    """Compares the run with the champion and promotes it in-process: (promoted, already champion, version)."""
    decision = compare_registry(config, registry, run_id)
    promotion, _ = promote_flow(config, registry, decision, LOCAL, run_given=True)
    return promotion.promoted, promotion.already, promotion.version.version
