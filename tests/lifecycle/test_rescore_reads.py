"""What one rescoring asks of the registry: the champion's run, read by whoever resolved the champion, is handed
to the rescoring and not read again (counted over a real embedded registry)."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path
from typing import Any, cast

import pytest

from mlops_bot.config import load_config
from mlops_bot.config.model import Config
from mlops_bot.lifecycle.champion import resolve_champion
from mlops_bot.lifecycle.rescore import rescore
from mlops_bot.pipeline.execute import run_pipeline
from mlops_bot.registry import open_registry
from mlops_bot.registry.base import Registry, Run
from tests.lifecycle.test_rescore import first_champion, project


class CountingRegistry:
    """A real registry whose every call is counted by name, and every get_run by run id."""

    def __init__(self, inner: Registry) -> None:
        self.inner = inner
        self.calls: Counter[str] = Counter()
        self.runs_read: Counter[str] = Counter()

    def get_run(self, run_id: str) -> Run:
        self.calls["get_run"] += 1
        self.runs_read[run_id] += 1
        return self.inner.get_run(run_id)

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.inner, name)
        if not callable(attribute):
            return attribute

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            return attribute(*args, **kwargs)
        return counted

    def forget(self) -> None:
        self.calls.clear()
        self.runs_read.clear()


@pytest.fixture
def challenged(tmp_path: Path) -> tuple[Config, CountingRegistry, str]:
    """A champion (w=0.5) and, in the workspace, a challenger's run on today's data: the check's state."""
    root = project(tmp_path / "p")
    first_champion(root)
    (root / "data.txt").write_text("0.9")
    (root / "w.txt").write_text("0.8")
    config = load_config(root / "ml.yaml", env={})
    registry = CountingRegistry(open_registry("local", root))
    challenger = run_pipeline(config, cast(Registry, registry)).run_id
    assert challenger is not None
    registry.forget()
    return config, registry, challenger


def test_the_champions_run_handed_over_is_not_read_again(challenged: tuple[Config, CountingRegistry, str]) -> None:
    config, counting, _ = challenged
    registry = cast(Registry, counting)
    champion = resolve_champion(registry, "fair", "champion")
    assert champion is not None and champion.run_id
    run = registry.get_run(champion.run_id)  # as the caller that resolved the champion read it
    counting.forget()
    fresh = rescore(config, registry, champion, run)
    assert fresh.champion.rescored_metrics == {"score": 0.6} and not fresh.champion.rescore_reused
    assert counting.calls["get_run"] == 0, counting.calls
    assert counting.calls["download_artifacts"] == 1 and counting.calls["log_batch"] == 1  # the model; the record
    shutil.rmtree(fresh.workdir)
    counting.forget()
    again = rescore(config, registry, champion, registry.get_run(champion.run_id))  # the record, not the step
    assert again.champion.rescore_reused and again.champion.rescored_metrics == {"score": 0.6}
    shutil.rmtree(again.workdir)
    assert counting.runs_read == Counter({champion.run_id: 1}), counting.runs_read


def test_without_the_run_or_with_another_one_the_champions_run_is_read_once(
        challenged: tuple[Config, CountingRegistry, str]) -> None:
    config, counting, challenger = challenged
    registry = cast(Registry, counting)
    champion = resolve_champion(registry, "fair", "champion")
    assert champion is not None and champion.run_id
    other = registry.get_run(challenger)  # a caller's mix-up: not the champion's run
    counting.forget()
    fresh = rescore(config, registry, champion)
    shutil.rmtree(fresh.workdir)
    assert fresh.champion.rescored_metrics == {"score": 0.6}
    assert counting.runs_read == Counter({champion.run_id: 1})
    counting.forget()
    again = rescore(config, registry, champion, other)
    shutil.rmtree(again.workdir)
    reused = again.champion
    assert reused.rescore_reused and reused.rescored_metrics == {"score": 0.6}  # the champion's record, not the other's
    assert counting.runs_read == Counter({champion.run_id: 1})


def test_a_check_reads_the_champions_run_once(challenged: tuple[Config, CountingRegistry, str]) -> None:
    from mlops_bot.flows.compare import compare_registry

    config, counting, challenger = challenged
    registry = cast(Registry, counting)
    version = registry.get_version_by_alias("fair", "champion")
    assert version is not None
    counting.forget()
    decision = compare_registry(config, registry, challenger)  # resolve, rescore (evaluated now) and judge
    assert decision.champion is not None and decision.champion.rescored_metrics == {"score": 0.6}
    assert counting.runs_read == Counter({challenger: 1, version.run_id: 1}), counting.runs_read
    counting.forget()
    again = compare_registry(config, registry, challenger)  # the recorded rescoring read back
    assert again.champion is not None and again.champion.rescore_reused
    assert counting.runs_read == Counter({challenger: 1, version.run_id: 1}), counting.runs_read
