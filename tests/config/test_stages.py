"""`promote.stages`, `promote.protected` and `chatops:` in ml.yaml: what they build into, and each bad form as a
located problem (exit 2 from the CLI)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from mlops_bot.cli import main
from mlops_bot.config import load_config
from mlops_bot.config.model import ApprovalRule, ChatOps, Criterion
from mlops_bot.errors import ConfigError
from tests.helpers.ml_yaml import VALID

STAGES = """\
promote:
  stages:
    - {alias: staging, deploy: [hook]}
    - alias: production
      requires: staging
      criteria: [{metric: accuracy, threshold: 0.9}]
      approval: {permission: admin, via: [comment], environment: prod}
  protected: [previous-production]
chatops: {permission: maintain, commands: [rerun, approve]}
"""


def problems_of(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    return [str(p).replace(str(path), "ml.yaml") for p in caught.value.problems]


def with_stages(stages: str, extra: str = "") -> str:
    return VALID + "promote:\n  stages:\n" + stages + extra


def test_stages_build_with_their_defaults(project: Callable[[str], Path]) -> None:
    config = load_config(project(VALID + STAGES), env={})
    staging, production = config.promote.stages
    assert (config.promote.alias, config.promote.previous_alias) == ("staging", "previous-staging")
    assert config.compare.champion.alias == "staging"  # compare judges against the entry stage by default
    assert (staging.requires, staging.criteria, staging.deploy, staging.approval) == (None, None, ("hook",), None)
    assert production.previous_alias == "previous-production"
    assert production.criteria == (Criterion(metric="accuracy", threshold=0.9),)
    assert production.deploy is None
    assert production.approval == ApprovalRule(permission="admin", via=("comment",), environment="prod")
    assert config.promote.protected == ("previous-production", "production")  # a stage with an approval is protected
    assert config.chatops == ChatOps(permission="maintain", commands=("rerun", "approve"))
    assert config.promote.stage("production") is production and config.promote.stage("nope") is None


def test_without_stages_nothing_changes(project: Callable[[str], Path]) -> None:
    config = load_config(project(VALID), env={})
    assert (config.promote.alias, config.promote.previous_alias, config.promote.stages) == (
        "champion", "previous-champion", ())
    assert config.compare.champion.alias == "champion" and config.promote.protected == ()
    assert [s.alias for s in config.promote.all_stages] == ["champion"]
    assert config.chatops == ChatOps()


def test_an_explicit_champion_alias_wins(project: Callable[[str], Path]) -> None:
    text = VALID.replace("compare:\n", "compare:\n  champion: {alias: prod}\n") + STAGES
    assert load_config(project(text), env={}).compare.champion.alias == "prod"


def test_a_stage_requiring_itself(project: Callable[[str], Path]) -> None:
    stages = "    - {alias: staging}\n    - {alias: production, requires: production}\n"
    found = problems_of(project(with_stages(stages)))
    assert found == ["ml.yaml:31:37: promote.stages[1].requires: stage 'production' requires itself; require the "
                     "stage before it, or remove `requires` from the entry stage"]


def test_a_cycle_of_requirements(project: Callable[[str], Path]) -> None:
    found = problems_of(project(with_stages(
        "    - {alias: dev}\n    - {alias: staging, requires: production}\n"
        "    - {alias: production, requires: staging}\n")))
    assert found == ["ml.yaml:31:34: promote.stages[1].requires: the stages' requirements form a cycle: staging -> "
                     "production -> staging; one stage must require none (the entry stage, which a merge moves)"]


def test_requires_naming_no_stage_gets_a_hint(project: Callable[[str], Path]) -> None:
    found = problems_of(project(with_stages("    - {alias: staging}\n    - {alias: production, requires: stagin}\n")))
    assert found == ["ml.yaml:31:37: promote.stages[1].requires: 'stagin' is not the alias of any stage; did you "
                     "mean 'staging'?"]


def test_two_entry_stages(project: Callable[[str], Path]) -> None:
    found = problems_of(project(with_stages("    - {alias: staging}\n    - {alias: canary}\n")))
    assert found == ["ml.yaml:31:7: promote.stages[1]: 2 stages require none ('staging', 'canary'): exactly one is "
                     "the entry stage a merge moves; give 'canary' the `requires` of the stage before it"]


def test_duplicates_and_colliding_aliases(project: Callable[[str], Path]) -> None:
    found = problems_of(project(with_stages(
        "    - {alias: staging}\n    - {alias: staging, requires: staging-x}\n"
        "    - {alias: previous-staging, requires: staging}\n")))
    assert "ml.yaml:31:15: promote.stages[1].alias: a stage with the alias 'staging' exists already; each stage " \
           "moves its own alias" in found
    assert "ml.yaml:32:15: promote.stages[2].alias: 'previous-staging' is also the previous_alias of stage " \
           "'staging'; give one of them another name" in found
    assert not any("stages[1].previous_alias" in p for p in found)  # the duplicate is reported once


def test_alias_with_stages_and_unknown_deploy_target(project: Callable[[str], Path]) -> None:
    text = VALID + "promote:\n  alias: champion\n  stages:\n    - {alias: staging, deploy: [hok]}\n"
    found = problems_of(project(text))
    assert found == [
        "ml.yaml:29:3: promote.alias: promote.alias cannot be given with promote.stages: the entry stage (the one "
        "without `requires`) sets it; write it in that stage",
        "ml.yaml:31:33: promote.stages[0].deploy[0]: 'hok' is not the name of a deploy target; did you mean 'hook'?"]


def test_stage_criteria_are_checked_like_compare_criteria(project: Callable[[str], Path]) -> None:
    found = problems_of(project(with_stages("    - {alias: staging, criteria: [{metric: accuracy}]}\n")))
    assert found == ["ml.yaml:30:35: promote.stages[0].criteria[0]: this criterion sets no rule; add threshold, "
                     "min_absolute_change, min_relative_change or max_regression"]


def test_a_protected_alias_is_one_the_bot_moves(project: Callable[[str], Path]) -> None:
    assert load_config(project(VALID + "promote: {protected: [champion]}\n"), env={}).promote.protected == (
        "champion",)
    found = problems_of(project(VALID + "promote: {protected: [champoin]}\n"))
    assert found == ["ml.yaml:28:23: promote.protected[0]: 'champoin' is not an alias mlops-bot moves, so whatever "
                     "held it would be flagged; did you mean 'champion'?"]


def test_schema_refuses_a_bad_role_and_command(project: Callable[[str], Path]) -> None:
    found = problems_of(project(VALID + "chatops: {permission: writer, commands: [deploy]}\n"))
    assert any("chatops.permission: 'writer' is not one of" in p and "did you mean 'write'?" in p for p in found)
    assert any("chatops.commands[0]: 'deploy' is not one of" in p for p in found)


def test_cli_validate_exits_2(project: Callable[[str], Path], capsys: pytest.CaptureFixture[str]) -> None:
    path = project(with_stages("    - {alias: a, requires: b}\n    - {alias: b, requires: a}\n"))
    assert main(["-C", str(path.parent), "validate"]) == 2
    assert "form a cycle: a -> b -> a" in capsys.readouterr().err
