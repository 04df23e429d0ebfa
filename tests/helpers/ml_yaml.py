"""An ml.yaml for the configuration tests."""

from __future__ import annotations

# Uses every section; the `project` fixture of tests/config writes the files it depends on.
VALID = """\
version: 1
model: {name: demo, artifact: build/model}
params: params.yaml
pipeline:
  prepare:
    cmd: python prepare.py
    deps: [prepare.py]
    params: [seed]
    outs: [build/data.csv]
  train:
    cmd: [python, train.py]
    deps: [train.py, build/data.csv]
    outs: [build/model]
  evaluate:
    cmd: python evaluate.py
    deps: [build/model, build/data.csv]
    metrics: build/metrics.json
    predictions: build/predictions.csv
compare:
  criteria:
    - {metric: accuracy, threshold: 0.8, min_absolute_change: 0.01}
    - {metric: latency_ms, greater_is_better: false, max_regression: {relative: 0.1}}
  significance: {metric: accuracy, test: mcnemar}
deploy:
  - {name: hook, type: webhook, url: "https://example.invalid/deploy", secret_env: HOOK_SECRET}
on:
  - {event: model_version.alias_set, where: {alias: champion}, do: [deploy]}
"""
