"""Property: whatever a mutation does to a valid ml.yaml, loading it succeeds or raises ConfigError (exit 0 or 2),
within 2 s; the problems are located and printable. Three fuzzers: structured mutations of the parsed document
(hypothesis), text mutations of the example files with a fixed seed, and a hypothesis strategy of the inputs that
used to crash (deep nesting, merge keys, explicit tags, huge integers, long paths, trailing newlines); and the
nastiest of those through the real CLI in a subprocess, for the exit code itself."""

from __future__ import annotations

import copy
import json
import random
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlops_bot.config import load_config
from mlops_bot.errors import ConfigError, UsageError
from tests.helpers.ml_yaml import VALID

ROOT = Path(__file__).resolve().parents[2]
BASE = yaml.safe_load(VALID)
SECONDS = 2.0  # for any one ml.yaml, however broken
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


def make_project(root: Path, source: str = "valid") -> Path:
    """A project directory with the files `source`'s ml.yaml depends on: "valid" (tests.helpers.ml_yaml.VALID) or
    the name of a folder of examples/."""
    root.mkdir(parents=True, exist_ok=True)
    if source == "valid":
        for name in ("prepare.py", "train.py", "evaluate.py"):
            (root / name).write_text("")
        (root / "params.yaml").write_text("seed: 1\ntrain: {C: 0.5}\n")
        (root / "ml.yaml").write_text(VALID)
    else:
        for path in (ROOT / "examples" / source).iterdir():
            if path.is_file():
                shutil.copy(path, root / path.name)
    return root / "ml.yaml"


def check_loads_or_fails_cleanly(path: Path) -> float:
    """Loads `path`; only a ConfigError (or UsageError) may escape, with located, printable problems. The seconds."""
    start = time.process_time()  # CPU seconds: what the loader costs, whatever else the machine runs
    try:
        load_config(path, env={})
    except ConfigError as exc:
        assert exc.problems and all(p.line >= 1 and p.col >= 1 and p.message for p in exc.problems), exc.problems
        str(exc).encode("utf-8")  # what the CLI prints must be printable
    except UsageError:
        pass
    return time.process_time() - start


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    mutations=st.lists(st.tuples(st.sampled_from(ALL_PATHS), st.sampled_from(["delete", "rename", "set"]), ODD_VALUES),
                       min_size=1, max_size=3),
    raw_noise=st.sampled_from(["", "\t", ": :", "&a [*a]", "'", "- x", "\x00", "{", "!!binary x"]),
)
def test_mutated_configs_fail_only_with_config_errors(tmp_path_factory: Any, mutations: Any, raw_noise: str) -> None:
    root: Path = tmp_path_factory.mktemp("fuzz")
    path = make_project(root)
    doc: Any = BASE
    for where, action, value in mutations:
        try:
            doc = mutate(doc, where, action, value)
        except (KeyError, IndexError, TypeError):
            continue
    path.write_text(yaml.safe_dump(doc, allow_unicode=True) + raw_noise)
    assert check_loads_or_fails_cleanly(path) < SECONDS


# -- text mutations of the example files, with a fixed seed ---------------------------------------------------------

NASTY = [
    "!!int abc", "!!float abc", "!!int ''", "!!float ''", "!!int 0x", "!!int -", "!!int 1:", "!!float 1:x",
    "!!bool maybe", "!!null x", "!!binary aGk=", "!!timestamp x", "!!set {a: null}", "!!omap [a: 1]", "!!str [1]",
    "!!python/name:os.system", "!!merge x", "!!value x", "!x y", "9" * 4301, "-" + "9" * 5000, "0x" + "f" * 4000,
    "0b" + "1" * 14000, "1" + ":59" * 3000, "1_" * 3000 + "1", "1e999", "-.inf", ".nan", "0o" + "7" * 100,
    "&r [*r]", "&r {a: *r}", "&r {<<: *r}", "*nowhere", "{<<: 1}", "{<<: [1, 2]}", "{<<: [[1]]}", "{<<: {a: 1}, a: 2}",
    "{<<: *x}", "{<<: ''}", "{<<: null}", "[" * 600 + "]" * 600, "{a: " * 300 + "1" + "}" * 300,
    "[" * 63 + "]" * 63, '"digits\\n"', '"a\\u0000b"', '"\\ud800"', '"\\x00"', "a" * 300, "/".join(["a" * 200] * 30),
    '"a\\nb"', '"a\\tb"', "''", "~", "[]", "{}", "? [a]", "- x", "|\n  text", ">-", "'", '"', "&a", "*", "!",
    "${NOT_SET}", "${X:-" + "d" * 300 + "}", "$$", "%YAML 1.1", "---", "...", "#",
]
PATHS = ["a" * 300, "d/" * 2100 + "x", "data\n", "a\tb", "..", "../x", "/etc/passwd", "~x", ".", "./", "a\\b",
         "b" * 255, "x/" + "c" * 256, "build", "build/model/x", "prepare.py/x"]
CHARS = [*":-[]{},&*!|>'\"#%@`?\t\n \\", "\x00", "\x85", "\ufeff", "\u2028", "\x1b", "\x7f", "é", "\U0001f600"]


def _line(rng: random.Random, lines: list[str]) -> int:
    return rng.randrange(len(lines)) if lines else 0


def mutate_text(rng: random.Random, text: str) -> str:
    """One random edit of the kinds that broke the loader: a nasty value, a line moved or lost, a stray character,
    a truncation, a path made too long, a quoted value with a newline, an anchor and its alias."""
    lines = text.split("\n")
    op = rng.randrange(12)
    i = _line(rng, lines)
    if op == 0 and lines and ": " in lines[i]:  # a value replaced
        lines[i] = lines[i][: lines[i].index(": ") + 2] + rng.choice(NASTY)
    elif op == 1:  # a key inserted
        indent = " " * rng.choice([0, 0, 2, 4, 6])
        lines.insert(i, f"{indent}{rng.choice(['x', 'version', 'deps', '<<', 'on', 'params'])}: {rng.choice(NASTY)}")
    elif op == 2 and lines:
        del lines[i]
    elif op == 3 and lines:
        lines.insert(i, lines[i])
    elif op == 4 and len(lines) > 1:
        j = _line(rng, lines)
        lines[i], lines[j] = lines[j], lines[i]
    elif op == 5 and lines:  # indentation changed
        lines[i] = (" " * rng.randint(1, 3) + lines[i]) if rng.random() < 0.5 else lines[i][rng.randint(1, 3):]
    elif op == 6:
        return _splice(rng, text, rng.choice(CHARS) * rng.choice([1, 1, 2, 60]))
    elif op == 7 and text:
        start = rng.randrange(len(text))
        return text[:start] + text[start + rng.randint(1, 20):]
    elif op == 8 and text:
        return text[: rng.randrange(len(text))]
    elif op == 9:  # a path made unusable
        for token in rng.sample(["prepare.py", "train.py", "evaluate.py", "build/model", "params.yaml",
                                 "build/metrics.json", "build/test.csv", "build/data.csv"], 8):
            if token in text:
                return text.replace(token, rng.choice(PATHS).replace("\n", "\\n"), rng.choice([1, -1]))
    elif op == 10:  # a quoted value with a newline or a control character
        for key in ("name: ", "alias: ", "metric: ", "event: ", "secret_env: ", "experiment: "):
            if key in text:
                start = text.index(key) + len(key)
                end = min((p for p in (text.find(c, start) for c in ",}\n") if p != -1), default=len(text))
                return text[:start] + json.dumps(text[start:end] + rng.choice(["\n", "\r", "\t", "\x00"])) + text[end:]
    else:  # an anchor on one value, its alias in another place
        a, b = _line(rng, lines), _line(rng, lines)
        if lines and ": " in lines[a] and ": " in lines[b]:
            lines[a] = lines[a].replace(": ", ": &z ", 1)
            lines[b] = lines[b][: lines[b].index(": ") + 2] + rng.choice(["*z", "{<<: *z}", "[*z, *z]"])
    return "\n".join(lines)


def _splice(rng: random.Random, text: str, insert: str) -> str:
    at = rng.randrange(len(text) + 1)
    return text[:at] + insert + text[at:]


def mutants(seed: int, count: int, sources: list[str]) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    originals = {source: make_text(source) for source in sources}
    out = []
    for n in range(count):
        source = sources[n % len(sources)]
        text = originals[source]
        for _ in range(rng.choice([1, 1, 2, 3])):
            text = mutate_text(rng, text)
        out.append((source, text))
    return out


def make_text(source: str) -> str:
    return VALID if source == "valid" else (ROOT / "examples" / source / "ml.yaml").read_text(encoding="utf-8")


SOURCES = ["valid", *sorted(p.parent.name for p in (ROOT / "examples").glob("*/ml.yaml"))]


def run_mutants(tmp_path: Path, seed: int, count: int) -> tuple[float, float]:
    """Each mutant loaded in its source's project (now and then with a mutated params.yaml). (total, worst) s."""
    projects = {source: make_project(tmp_path / source, source) for source in SOURCES}
    params = {source: (path.parent / "params.yaml").read_text() for source, path in projects.items()}
    rng = random.Random(seed + 1)
    total = worst = 0.0
    failures = []
    for n, (source, text) in enumerate(mutants(seed, count, SOURCES)):
        path = projects[source]
        path.write_text(text, encoding="utf-8")
        mutated_params = rng.random() < 0.05
        if mutated_params:
            (path.parent / "params.yaml").write_text(mutate_text(rng, params[source]), encoding="utf-8")
        try:
            seconds = check_loads_or_fails_cleanly(path)
        except Exception as exc:  # collected, so one run shows every kind
            failures.append(f"mutant {n} ({source}): {type(exc).__name__}: {str(exc)[:200]}")
            continue
        finally:
            if mutated_params:
                (path.parent / "params.yaml").write_text(params[source], encoding="utf-8")
        total += seconds
        worst = max(worst, seconds)
        if seconds >= SECONDS:
            failures.append(f"mutant {n} ({source}): {seconds:.2f}s")
    assert failures == []
    return total, worst


def test_text_mutants_of_the_examples_fail_cleanly(tmp_path: Path) -> None:
    run_mutants(tmp_path, seed=13, count=1000)


@pytest.mark.slow
def test_ten_thousand_text_mutants_fail_cleanly(tmp_path: Path) -> None:
    total, worst = run_mutants(tmp_path, seed=2026, count=10_000)
    print(f"10,000 mutants: {total:.1f}s loading, the slowest {worst:.3f}s")


def test_mutants_are_reproducible_and_varied() -> None:
    first, again = mutants(13, 200, SOURCES), mutants(13, 200, SOURCES)
    assert first == again
    assert len({text for _, text in first}) > 150


# -- the inputs that used to crash, as a strategy ------------------------------------------------------------------

def _deep(n: int, kind: str) -> str:
    return "[" * n + "]" * n if kind == "flow" else "{a: " * n + "1" + "}" * n


NESTING = st.builds(_deep, st.integers(1, 800), st.sampled_from(["flow", "map"]))
SMALL = st.sampled_from(["1", "abc", "''", "[1]", "{a: 1}", "*a", "null", "[*a]", "{<<: *a}"])
MERGES = st.builds(lambda v, extra: f"{{<<: {v}{extra}}}", st.one_of(SMALL, st.lists(SMALL, max_size=3).map(
    lambda xs: "[" + ", ".join(xs) + "]")), st.sampled_from(["", ", a: 2", ", <<: {b: 1}"]))
TAGS = st.builds(lambda tag, value: f"!!{tag} {value}", st.sampled_from(
    ["int", "float", "bool", "null", "str", "binary", "timestamp", "set", "omap", "pairs", "seq", "map", "merge",
     "value", "python/none", "python/object:os.system"]), st.sampled_from(
    ["abc", "''", "1", "-", "0x", "1:", "1:x", ".", "[1]", "{a: 1}", "0b2", "9" * 5000, "aGk="]))
HUGE = st.builds(lambda digits, form: form.format("9" * digits, "f" * digits), st.integers(95, 6000), st.sampled_from(
    ["{0}", "-{0}", "0x{1}", "{0}.5", "1e{0}", "'{0}'"]))
LONG_PATHS = st.builds(lambda n, form: form.format("a" * n), st.integers(200, 5000), st.sampled_from(
    ["{0}", "d/{0}", "{0}/x", "'{0}\\n'"])) | st.sampled_from(['"a\\nb"', '"a\\u0000"', '"\\u0007x"', "'~/x'", "./."])
NEWLINES = st.builds(lambda text, end: json.dumps(text + end), st.sampled_from(
    ["demo", "champion", "accuracy", "model_version.alias_set", "hook", "HOOK_SECRET", "build/model"]),
    st.sampled_from(["\n", "\r\n", "\n\n", " \n", "\x85", "\u2028"]))
ALIASES = st.sampled_from(["&r [*r]", "&r {a: *r}", "&r [[[*r]]]", "*undefined", "&a 1", "&a [1, *a]"])
NASTY_VALUES = st.one_of(NESTING, MERGES, TAGS, HUGE, LONG_PATHS, NEWLINES, ALIASES)
SLOTS = ["version: 1", "name: demo", "artifact: build/model", "params: params.yaml", "deps: [prepare.py]",
         "outs: [build/model]", "metrics: build/metrics.json", "threshold: 0.8", "test: mcnemar",
         "secret_env: HOOK_SECRET", "alias: champion", "event: model_version.alias_set", "cmd: python evaluate.py"]
PARAMS = st.one_of(NESTING.map(lambda v: f"seed: {v}\n"), HUGE.map(lambda v: f"seed: {v}\n"),
                   TAGS.map(lambda v: f"seed: {v}\n"), MERGES.map(lambda v: f"seed: 1\nx: {v}\n"),
                   ALIASES.map(lambda v: f"seed: 1\nx: {v}\n"), st.just("seed: 1\n"))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(slot=st.sampled_from([*SLOTS, "append"]), value=NASTY_VALUES, params=PARAMS)
def test_nasty_values_fail_only_with_config_errors(tmp_path_factory: Any, slot: str, value: str, params: str) -> None:
    path = make_project(tmp_path_factory.mktemp("nasty"))
    (path.parent / "params.yaml").write_text(params)
    if slot == "append":
        text = VALID + f"x: {value}\n"
    else:
        key, old = slot.split(": ", 1)
        inner = old.startswith("[")
        text = VALID.replace(slot, f"{key}: [{value}]" if inner else f"{key}: {value}", 1)
    path.write_text(text)
    assert check_loads_or_fails_cleanly(path) < SECONDS


# -- the nastiest inputs through the real CLI ----------------------------------------------------------------------

CLI_CASES: dict[str, Callable[[str], str]] = {
    "deep nesting": lambda v: v + "x: " + "[" * 500 + "]" * 500 + "\n",
    "recursive alias": lambda v: v + "x: &r [*r]\n",
    "merge of a scalar": lambda v: v + "x: {<<: 1}\n",
    "wrong explicit tag": lambda v: v.replace("version: 1", "version: !!int abc"),
    "huge integer": lambda v: v.replace("version: 1", "version: " + "9" * 4301),
    "long path": lambda v: v.replace("deps: [prepare.py]", "deps: [" + "a" * 300 + "]"),
    "flat list of 1 MiB": lambda v: v + "x: [" + "1," * 500_000 + "1]\n",
    "trailing newline": lambda v: v.replace("name: demo", 'name: "demo\\n"'),
    "deeply nested params file": lambda v: v,
}


@pytest.mark.parametrize("case", list(CLI_CASES))
def test_the_cli_exits_2_on_the_nastiest_inputs(tmp_path: Path, case: str) -> None:
    path = make_project(tmp_path)
    path.write_text(CLI_CASES[case](VALID))
    if case == "deeply nested params file":
        (tmp_path / "params.yaml").write_text("seed: " + "[" * 900 + "]" * 900 + "\n")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run([sys.executable, "-m", "mlops_bot", "-C", str(tmp_path), "validate"], capture_output=True,
                          text=True, timeout=60, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}, cwd=ROOT)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert done.returncode == 2, done.stderr
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    assert cpu < SECONDS + 3  # CPU seconds of the command, the interpreter's start and imports included
    assert f"{path}:" in done.stderr and "Traceback" not in done.stderr and "internal error" not in done.stderr
