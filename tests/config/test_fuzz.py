"""Property: whatever a mutation does to a valid ml.yaml, loading it succeeds or raises ConfigError."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlops_bot.config import load_config
from mlops_bot.errors import ConfigError
from tests.helpers.ml_yaml import VALID

BASE = yaml.safe_load(VALID)
ODD_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20), st.lists(st.text(max_size=5), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found += paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += paths(value, (*prefix, i))
    return found


ALL_PATHS = paths(BASE)[1:]


def mutate(doc: Any, path: tuple[Any, ...], action: str, value: Any) -> Any:
    doc = copy.deepcopy(doc)
    parent = doc
    for part in path[:-1]:
        parent = parent[part]
    last = path[-1]
    if action == "delete":
        del parent[last]
    elif action == "rename" and isinstance(parent, dict):
        parent[str(last) + "x"] = parent.pop(last)
    else:
        parent[last] = value
    return doc


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    mutations=st.lists(st.tuples(st.sampled_from(ALL_PATHS), st.sampled_from(["delete", "rename", "set"]), ODD_VALUES),
                       min_size=1, max_size=3),
    raw_noise=st.sampled_from(["", "\t", ": :", "&a [*a]", "'", "- x", "\x00", "{", "!!binary x"]),
)
def test_mutated_configs_fail_only_with_config_errors(tmp_path_factory: Any, mutations: Any, raw_noise: str) -> None:
    root: Path = tmp_path_factory.mktemp("fuzz")
    for name in ("prepare.py", "train.py", "evaluate.py"):
        (root / name).write_text("")
    (root / "params.yaml").write_text("seed: 1\n")
    doc: Any = BASE
    for path, action, value in mutations:
        try:
            doc = mutate(doc, path, action, value)
        except (KeyError, IndexError, TypeError):
            continue
    text = yaml.safe_dump(doc, allow_unicode=True) + raw_noise
    (root / "ml.yaml").write_text(text)
    try:
        load_config(root / "ml.yaml", env={})
    except ConfigError as exc:
        assert exc.problems and all(p.line >= 1 and p.col >= 1 and p.message for p in exc.problems)
