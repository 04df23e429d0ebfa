"""A checked ml.yaml document -> the frozen Config dataclasses, with every default filled in."""

from __future__ import annotations

from typing import Any

from .backends import backend_of
from .durations import seconds
from .model import (
    Analysis,
    ApprovalRule,
    ChampionSelector,
    ChatOps,
    Compare,
    Config,
    Criterion,
    CurrentData,
    DeployTarget,
    DriftTest,
    Model,
    Monitor,
    Promote,
    Regression,
    Report,
    Rollout,
    RolloutStep,
    Rule,
    Shadow,
    Significance,
    Stage,
    Step,
    Tracking,
    Verify,
    as_tuple,
    file_digest,
)
from .source import Document


def build_config(doc: Document) -> Config:
    data = doc.data
    model = Model(name=data["model"]["name"], artifact=data["model"]["artifact"])
    tracking = data.get("tracking", {})
    promote = _promote(data.get("promote", {}))
    return Config(
        path=doc.root / doc.file.rsplit("/", 1)[-1],
        root=doc.root,
        digest=file_digest(doc.raw),
        version=data["version"],
        model=model,
        tracking=Tracking(uri=tracking.get("uri", "local"), experiment=tracking.get("experiment", model.name),
                          registry_uri=tracking.get("registry_uri", "")),
        params_file=data.get("params"),
        pipeline={name: _step(name, raw) for name, raw in data["pipeline"].items()},
        compare=_compare(data.get("compare", {}), promote.alias if promote.stages else "champion"),
        promote=promote,
        deploy=tuple(_target(t, _predictions(data["pipeline"])) for t in data.get("deploy", [])),
        report=_report(data.get("report", {})),
        rules=tuple(Rule(event=r["event"], where={k: _env_value(v) for k, v in r.get("where", {}).items()},
                         do=tuple(r["do"])) for r in data.get("on", [])),
        monitor=_monitor(data["monitor"]) if "monitor" in data else None,
        chatops=_chatops(data.get("chatops", {})),
    )


def _monitor(raw: dict[str, Any]) -> Monitor:
    current = raw["current"]
    if isinstance(current, str):
        where = CurrentData(path=current)
    elif "url" in current:
        where = CurrentData(url=current["url"])
    else:
        where = CurrentData(path=current["path"], cmd=_command(current["cmd"]),
                            pass_env=as_tuple(current.get("pass_env")), timeout=current.get("timeout"))
    tests = raw.get("tests", {})
    when = raw.get("drift_when", {"share": 0.5})
    sample = raw.get("sample", {})
    defaults = Monitor(current=where)
    return Monitor(
        current=where, reference=raw.get("reference"), features=as_tuple(raw.get("features")),
        categorical=as_tuple(raw.get("categorical")), numeric=as_tuple(raw.get("numeric")),
        numeric_tests=_drift_tests(tests.get("numeric")) or defaults.numeric_tests,
        categorical_tests=_drift_tests(tests.get("categorical")) or defaults.categorical_tests,
        require_all=tests.get("require", "all") == "all",
        min_features=when.get("features"), min_share=when.get("share"),
        null_rate_change=raw.get("null_rate_change", defaults.null_rate_change),
        sample_rows=sample.get("rows"), seed=sample.get("seed", 0), max_mb=raw.get("max_mb", defaults.max_mb),
        report=raw.get("report", defaults.report))


def _drift_tests(raw: dict[str, float] | None) -> tuple[DriftTest, ...]:
    return tuple(DriftTest(name, float(threshold)) for name, threshold in (raw or {}).items())


def _command(value: Any) -> str | tuple[str, ...]:
    return value if isinstance(value, str) else tuple(value)


def _step(name: str, raw: dict[str, Any]) -> Step:
    return Step(
        name=name,
        cmd=_command(raw["cmd"]),
        deps=as_tuple(raw.get("deps")),
        outs=as_tuple(raw.get("outs")),
        params=as_tuple(raw.get("params")),
        env={k: _env_value(v) for k, v in raw.get("env", {}).items()},
        pass_env=as_tuple(raw.get("pass_env")),
        metrics=raw.get("metrics"),
        predictions=raw.get("predictions"),
        timeout=raw.get("timeout"),
        backend=backend_of(raw.get("backend")),
    )


def _env_value(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _compare(raw: dict[str, Any], champion_alias: str) -> Compare:
    """`champion_alias`: the default of compare.champion.alias (with stages: the entry stage's alias)."""
    criteria = tuple(_criterion(c) for c in raw.get("criteria", []))
    return Compare(
        champion=ChampionSelector(alias=raw.get("champion", {}).get("alias", champion_alias)),
        rescore_champion=raw.get("rescore_champion", False),
        criteria=criteria,
        significance=_significance(raw.get("significance"), criteria),
    )


def _significance(raw: dict[str, Any] | None, criteria: tuple[Criterion, ...]) -> Significance | None:
    """The block's metrics (`metric` is the one-metric form) and those of criteria marked `significant`."""
    settings = dict(raw or {})
    named = as_tuple(settings.pop("metrics", None)) or as_tuple(settings.pop("metric", None))
    metrics = tuple(dict.fromkeys((*named, *(c.metric for c in criteria if c.significant))))
    return Significance(metrics=metrics, **settings) if metrics else None


def _criterion(raw: dict[str, Any]) -> Criterion:
    regression = raw.get("max_regression")
    return Criterion(
        metric=raw["metric"],
        greater_is_better=raw.get("greater_is_better", True),
        threshold=raw.get("threshold"),
        min_absolute_change=raw.get("min_absolute_change"),
        min_relative_change=raw.get("min_relative_change"),
        max_regression=Regression(**regression) if regression else None,
        significant=raw.get("significant", False),
    )


def _promote(raw: dict[str, Any]) -> Promote:
    stages = tuple(_stage(s) for s in raw.get("stages", []))
    # With stages, the entry stage (the one that requires none; semantics checks there is one) is what a merge moves.
    entry = next((s for s in stages if s.requires is None), None)
    approved = tuple(s.alias for s in stages if s.approval is not None)
    return Promote(
        alias=entry.alias if entry else raw.get("alias", "champion"),
        previous_alias=entry.previous_alias if entry else raw.get("previous_alias", "previous-champion"),
        on=tuple(raw.get("on", ["push"])),
        stages=stages,
        protected=tuple(dict.fromkeys((*as_tuple(raw.get("protected")), *approved))),
    )


def _stage(raw: dict[str, Any]) -> Stage:
    approval = raw.get("approval")
    return Stage(
        alias=raw["alias"],
        previous_alias=raw.get("previous_alias", f"previous-{raw['alias']}"),
        requires=raw.get("requires"),
        criteria=tuple(_criterion(c) for c in raw["criteria"]) if "criteria" in raw else None,
        deploy=as_tuple(raw["deploy"]) if "deploy" in raw else None,
        approval=None if approval is None else ApprovalRule(
            permission=approval.get("permission", "maintain"),
            via=tuple(approval.get("via", ("environment", "review", "comment"))),
            environment=approval.get("environment")),
    )


def _chatops(raw: dict[str, Any]) -> ChatOps:
    defaults = ChatOps()
    return ChatOps(permission=raw.get("permission", defaults.permission),
                   commands=tuple(raw.get("commands", defaults.commands)))


def _predictions(pipeline: dict[str, Any]) -> str | None:
    """The predictions file of the evaluation step (the first step that declares one)."""
    return next((step["predictions"] for step in pipeline.values() if step.get("predictions")), None)


def _target(raw: dict[str, Any], predictions: str | None = None) -> DeployTarget:
    return DeployTarget(
        name=raw["name"],
        type=raw["type"],
        cmd=_command(raw["cmd"]) if "cmd" in raw else None,
        url=raw.get("url"),
        secret_env=raw.get("secret_env"),
        file=raw.get("file"),
        repo=raw.get("repo"),
        branch=raw.get("branch"),
        pull_request=raw.get("pull_request", False),
        set={k: _env_value(v) for k, v in raw.get("set", {}).items()},
        canary_percent=raw.get("canary", {}).get("traffic_percent"),
        timeout=raw.get("timeout"),
        pass_env=as_tuple(raw.get("pass_env")),
        port=raw.get("port"),
        host=raw.get("host", "127.0.0.1"),
        workers=raw.get("workers", 1),
        verify=_verify(raw.get("verify", {}), predictions),
        rollout=_rollout(raw["rollout"]) if "rollout" in raw else None,
        workspace=raw.get("workspace"),
        endpoint=raw.get("endpoint"),
        instance_type=raw.get("instance_type", "Standard_DS3_v2"),
        instance_count=raw.get("instance_count", 1),
        management_url=raw.get("management_url", "https://management.azure.com"),
    )


def _rollout(raw: dict[str, Any]) -> Rollout:
    defaults = Rollout()
    shadow = raw.get("shadow")
    return Rollout(
        steps=tuple(RolloutStep(s["traffic"], seconds(s.get("hold", 0))) for s in raw.get("steps", []))
        or defaults.steps,
        analysis=tuple(Analysis(a["name"], a["query"], a.get("max"), a.get("min"), a.get("no_data", "hold"))
                       for a in raw.get("analysis", [])),
        shadow=Shadow(shadow["share"], seconds(shadow["hold"]), shadow.get("min_agreement")) if shadow else None,
        metrics=raw.get("metrics"),
        interval_s=seconds(raw.get("interval", defaults.interval_s)),
        hand_off=raw.get("hand_off", False),
    )


def _verify(raw: dict[str, Any], predictions: str | None) -> Verify:
    """The smoke test of an mlflow_serve target; its expected predictions are the evaluation step's file."""
    defaults = Verify()
    return Verify(rows=raw.get("rows"), id_column=raw.get("id_column", defaults.id_column),
                  drop=as_tuple(raw.get("drop")), agreement=raw.get("agreement", defaults.agreement),
                  p95_ms=raw.get("p95_ms"), sample=raw.get("sample", defaults.sample),
                  predictions=raw.get("predictions", predictions))


def _report(raw: dict[str, Any]) -> Report:
    pull_request = raw.get("pull_request", {})
    chart = pull_request.get("chart", "mermaid")
    return Report(
        sticky=pull_request.get("sticky", True),
        history=pull_request.get("history", 10),
        chart=None if chart == "none" else chart,
        summary=raw.get("summary", True),
        file=raw.get("file", Report.file),
    )
