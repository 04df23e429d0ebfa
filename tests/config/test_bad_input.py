"""Each kind of bad ml.yaml gets a located, actionable message and exit 2 from the CLI."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from mlops_bot.cli import main
from mlops_bot.config import load_config
from mlops_bot.errors import ConfigError
from tests.helpers.ml_yaml import VALID


def problems_of(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    name = str(path)
    return [str(p).replace(name, "ml.yaml") for p in caught.value.problems]


def test_missing_file(tmp_path: Path) -> None:
    assert problems_of(tmp_path / "ml.yaml") == ["ml.yaml:1:1: the file does not exist; create it or pass -c FILE"]


def test_empty_file(project: Callable[[str], Path]) -> None:
    assert problems_of(project("\n  \n")) == ["ml.yaml:1:1: the file is empty; start with `version: 1`"]


def test_non_mapping_document(project: Callable[[str], Path]) -> None:
    [message] = problems_of(project("- a\n- b\n"))
    assert message == "ml.yaml:1:1: the document must be a mapping of keys (version, model, pipeline, ...), not list"


def test_tabs_are_explained(project: Callable[[str], Path]) -> None:
    [message] = problems_of(project("version: 1\nmodel:\n\tname: x\n"))
    assert message.startswith("ml.yaml:3:1: invalid YAML")
    assert "tabs are not allowed in YAML indentation, use spaces" in message


def test_duplicate_keys_name_both_lines(project: Callable[[str], Path]) -> None:
    messages = problems_of(project(VALID.replace("params: params.yaml\n", "params: params.yaml\nparams: p2.yaml\n")))
    assert messages == ["ml.yaml:4:1: params: duplicate key 'params' (first at line 3)"]


def test_unknown_keys_suggest_the_right_one(project: Callable[[str], Path]) -> None:
    text = VALID.replace("    deps: [prepare.py]", "    dpes: [prepare.py]").replace("threshold: 0.8", "treshold: 0.8")
    messages = problems_of(project(text))
    assert "ml.yaml:7:5: pipeline.prepare.dpes: unknown key 'dpes'; did you mean 'deps'?" in messages
    assert "ml.yaml:21:26: compare.criteria[0].treshold: unknown key 'treshold'; did you mean 'threshold'?" in messages


def test_misspelt_enum_value_suggests(project: Callable[[str], Path]) -> None:
    [message] = problems_of(project(VALID.replace("test: mcnemar", "test: mcnemer")))
    assert message == ("ml.yaml:23:42: compare.significance.test: 'mcnemer' is not one of 'auto', "
                       "'paired_bootstrap', 'mcnemar'; did you mean 'mcnemar'?")


def test_wrong_types(project: Callable[[str], Path]) -> None:
    text = VALID.replace("threshold: 0.8", "threshold: high").replace("outs: [build/model]", "outs: build/model")
    messages = problems_of(project(text))
    assert "ml.yaml:13:11: pipeline.train.outs: expected a list, got str 'build/model'" in messages
    assert "ml.yaml:21:37: compare.criteria[0].threshold: expected a number, got str 'high'" in messages


@pytest.mark.parametrize("value", [".nan", ".inf"])
def test_non_finite_thresholds(project: Callable[[str], Path], value: str) -> None:
    [message] = problems_of(project(VALID.replace("threshold: 0.8", f"threshold: {value}")))
    assert message.startswith("ml.yaml:21:37: compare.criteria[0].threshold: ")
    assert "is not a finite number" in message


def test_negative_thresholds_are_allowed_where_metrics_go_negative(project: Callable[[str], Path]) -> None:
    config = load_config(project(VALID.replace("threshold: 0.8", "threshold: -0.35")), env={})
    assert config.compare.criteria[0].threshold == -0.35  # R², neg_log_loss and the like


def test_pipeline_cycle(project: Callable[[str], Path]) -> None:
    text = VALID.replace("deps: [prepare.py]", "deps: [prepare.py, build/model]")
    messages = problems_of(project(text))
    assert any("the steps form a cycle: " in m and "prepare" in m and "train" in m for m in messages), messages


def test_dep_nobody_produces(project: Callable[[str], Path]) -> None:
    text = VALID.replace("deps: [train.py, build/data.csv]", "deps: [train.py, build/dta.csv]")
    [message] = problems_of(project(text))
    assert message == ("ml.yaml:12:22: pipeline.train.deps[1]: 'build/dta.csv' does not exist and no step writes it; "
                       "did you mean 'build/data.csv'?")


def test_two_steps_writing_the_same_out(project: Callable[[str], Path]) -> None:
    [message] = problems_of(project(VALID.replace("outs: [build/model]", "outs: [build/model, build/data.csv]")))
    assert "pipeline.train.outs[1]: 'build/data.csv' is also written by step 'prepare'" in message


def test_webhook_target_without_url(project: Callable[[str], Path]) -> None:
    [message] = problems_of(project(VALID.replace('url: "https://example.invalid/deploy", ', "")))
    assert message == "ml.yaml:25:5: deploy[0]: missing required key 'url'"


def test_all_problems_are_reported_at_once(project: Callable[[str], Path]) -> None:
    text = VALID.replace("version: 1", "version: 2").replace("dpes", "deps").replace("deps: [prepare.py]", "dpes: []")
    text = text.replace("params: [seed]", "params: [sed]")
    messages = problems_of(project(text))
    assert len(messages) == 3, messages
    assert any("sed' is not in params.yaml; did you mean 'seed'?" in m for m in messages)


def test_ten_megabyte_file(project: Callable[[str], Path]) -> None:
    path = project(VALID + "#" + "x" * (10 * 1024 * 1024) + "\n")
    [message] = problems_of(path)
    assert "over the limit of 1048576" in message


def test_alias_bomb_stops_early(project: Callable[[str], Path]) -> None:
    levels = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    levels += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
    [message] = problems_of(project("\n".join(levels) + "\n"))
    assert "expands to more than 50000 values" in message


def test_python_tags_are_refused(project: Callable[[str], Path]) -> None:
    [message] = problems_of(project("version: !!python/object/apply:os.system ['true']\n"))
    assert "unsupported YAML tag" in message or "invalid YAML" in message


def test_cli_prints_each_problem_and_exits_2(project: Callable[[str], Path],
                                             capsys: pytest.CaptureFixture[str]) -> None:
    path = project(VALID.replace("min_absolute_change: 0.01", "min_absolute_change: -1").replace("dpes", "x"))
    code = main(["-C", str(path.parent), "validate"])
    err = capsys.readouterr().err
    assert code == 2
    assert f"{path}:21:63: compare.criteria[0].min_absolute_change: -1 is less than the minimum of 0" in err
    assert "Traceback" not in err


def test_github_annotations(project: Callable[[str], Path], capsys: pytest.CaptureFixture[str],
                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    path = project(VALID.replace("    deps: [prepare.py]", "    dpes: [prepare.py]"))
    assert main(["validate", "-c", os.fspath(path)]) == 2
    out = capsys.readouterr().out
    assert f"::error file={path},line=7,col=5::pipeline.prepare.dpes: unknown key 'dpes'; did you mean 'deps'?" in out
    monkeypatch.setenv("GITHUB_WORKSPACE", str(path.parent.parent))
    assert main(["validate", "-c", os.fspath(path)]) == 2
    out = capsys.readouterr().out
    assert f"::error file={path.parent.name}/ml.yaml,line=7,col=5::pipeline.prepare.dpes" in out


def test_validate_json_lists_problems(project: Callable[[str], Path], capsys: pytest.CaptureFixture[str]) -> None:
    import json

    path = project(VALID.replace("    deps: [prepare.py]", "    dpes: [prepare.py]"))
    assert main(["-C", str(path.parent), "validate", "--json"]) == 2
    doc = json.loads(capsys.readouterr().out)
    assert doc["valid"] is False
    assert doc["problems"] == [{"file": str(path), "line": 7, "col": 5, "path": "pipeline.prepare.dpes",
                                "message": "unknown key 'dpes'; did you mean 'deps'?"}]
    path = project(VALID)
    assert main(["-C", str(path.parent), "validate", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["valid"] is True


def test_pass_env_may_not_name_the_bots_secrets(project: Callable[[str], Path]) -> None:
    hook = '  - {name: hook, type: webhook, url: "https://example.invalid/deploy", secret_env: HOOK_SECRET}\n'
    assert hook in VALID
    text = VALID.replace(hook, hook + "  - {name: ship, type: command, cmd: [./ship], "
                                      "pass_env: [AWS_*, HOOK_SECRET, MLOPS_BOT_LOGIN]}\n")
    messages = [m for m in problems_of(project(text)) if "pass_env" in m]
    assert [m.split(": ", 2)[1] for m in messages] == ["deploy[1].pass_env[1]", "deploy[1].pass_env[2]"]
    assert all("is never passed to a step or a deploy command" in m for m in messages)
