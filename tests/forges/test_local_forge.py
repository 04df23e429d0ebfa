"""The local forge stands in for CI on a laptop: what would be started is recorded, once per request."""

from __future__ import annotations

import json
from pathlib import Path

from mlops_bot.ci.context import read_forge_context
from mlops_bot.forges import open_forge
from mlops_bot.forges.local import LocalForge


def test_mlops_bot_forge_local_names_the_local_stand_in(tmp_path: Path) -> None:
    context = read_forge_context({"MLOPS_BOT_FORGE": " Local "}, reason="an `on:` rule asked to retrain")
    assert context.platform == "local" and not context.in_ci
    assert isinstance(open_forge(context, {}, root=tmp_path), LocalForge)


def test_a_pipeline_request_is_recorded(tmp_path: Path) -> None:
    forge = LocalForge(tmp_path / ".mlops-bot")
    first = forge.trigger_pipeline("main", {"MLOPS_BOT_EVENT": "drift.detected"})
    forge.trigger_pipeline("release", {})
    lines = [json.loads(line) for line in Path(first).read_text().splitlines()]
    assert [(r["ref"], r["inputs"]) for r in lines] == [("main", {"MLOPS_BOT_EVENT": "drift.detected"}),
                                                         ("release", {})]
    assert (tmp_path / ".mlops-bot" / ".gitignore").read_text().strip().endswith("*")  # never committed
