from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mlops_bot.config.model import Step
from mlops_bot.errors import UsageError
from mlops_bot.pipeline import cache, dag
from mlops_bot.pipeline.cache import LockEntry, read_lock, stale_reasons, step_inputs, write_lock
from mlops_bot.pipeline.hashing import Hasher
from mlops_bot.support import files
from mlops_bot.support.files import WriteFailed

TRAIN = Step("train", "python train.py", deps=("train.py", "data.csv"), outs=("model",), params=("train.C",),
             env={"SEED": "1"})


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "train.py").write_text("print(1)\n")
    (tmp_path / "data.csv").write_text("a,b\n1,2\n")
    return tmp_path


def key(root: Path, step: Step = TRAIN, params: dict[str, object] | None = None) -> str:
    return step_inputs(step, Hasher(root, root / ".s"), params or {"train.C": 0.5}).key


def test_key_covers_cmd_deps_params_and_env(root: Path) -> None:
    base = key(root)
    assert key(root) == base
    assert key(root, params={"train.C": 1.0}) != base
    assert key(root, Step(**{**TRAIN.__dict__, "cmd": "python train.py --fast"})) != base
    assert key(root, Step(**{**TRAIN.__dict__, "env": {"SEED": "2"}})) != base
    assert key(root, Step(**{**TRAIN.__dict__, "cmd": ("python", "train.py")})) != base
    (root / "data.csv").write_text("a,b\n1,3\n")
    assert key(root) != base


def test_stale_reasons_name_what_changed(root: Path) -> None:
    hasher = Hasher(root, root / ".s")
    last = step_inputs(TRAIN, hasher, {"train.C": 0.5})
    (root / "model").write_text("m")
    last = LockEntry(**{**last.__dict__, "outs": cache.hash_outs(TRAIN, hasher)})
    assert stale_reasons(TRAIN, step_inputs(TRAIN, hasher, {"train.C": 0.5}), last, hasher) == []
    (root / "data.csv").write_text("changed")
    now = step_inputs(TRAIN, hasher, {"train.C": 2})
    assert stale_reasons(TRAIN, now, last, hasher) == ["dep 'data.csv' changed", "param 'train.C' changed (0.5 -> 2)"]
    assert stale_reasons(TRAIN, now, None, hasher) == ["never run (not in ml.lock)"]


def test_modified_or_missing_outs_make_a_step_stale(root: Path) -> None:
    hasher = Hasher(root, root / ".s")
    (root / "model").write_text("m")
    now = step_inputs(TRAIN, hasher, {"train.C": 0.5})
    last = LockEntry(**{**now.__dict__, "outs": cache.hash_outs(TRAIN, hasher)})
    (root / "model").write_text("edited by hand")
    assert stale_reasons(TRAIN, now, last, hasher) == ["out 'model' was modified"]
    (root / "model").unlink()
    assert stale_reasons(TRAIN, now, last, hasher) == ["out 'model' is missing"]


def entry(n: int) -> LockEntry:
    return LockEntry(key=f"k{n}", cmd=["python", f"s{n}.py"], deps={"z.py": "h1", "a.py": "h2"},
                     params={"b": 1, "a": [1, 2]}, env="e", outs={"out": None if n else "h3"})


def test_lock_roundtrip_is_deterministic_and_sorted(tmp_path: Path) -> None:
    path = tmp_path / "ml.lock"
    write_lock(path, {"train": entry(1), "prepare": entry(0)})
    first = path.read_bytes()
    assert read_lock(path) == {"train": entry(1), "prepare": entry(0)}
    write_lock(path, dict(reversed(list(read_lock(path).items()))))
    assert path.read_bytes() == first
    text = first.decode()
    assert text.index("prepare:") < text.index("train:") and text.index("a.py") < text.index("z.py")
    assert text.startswith("# Written by `mlops-bot run`")


def test_missing_lock_is_empty_and_broken_lock_is_a_clear_error(tmp_path: Path) -> None:
    assert read_lock(tmp_path / "ml.lock") == {}
    (tmp_path / "ml.lock").write_text("schema: 1\nsteps:\n<<<<<<< HEAD\n  a: [\n")
    with pytest.raises(UsageError, match=r"ml.lock:\d+: not valid YAML \(a merge conflict\?\)"):
        read_lock(tmp_path / "ml.lock")
    (tmp_path / "ml.lock").write_text("steps: []\n")
    with pytest.raises(UsageError, match=r"not an ml\.lock this version understands"):
        read_lock(tmp_path / "ml.lock")


def test_lock_write_goes_through_rename(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "ml.lock"
    write_lock(path, {"prepare": entry(0)})
    before = path.read_bytes()

    def broken_replace(src: object, dst: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(files.os, "replace", broken_replace)
    with pytest.raises(WriteFailed, match=r"cannot write .*ml\.lock \(disk full\)"):
        write_lock(path, {"prepare": entry(0), "train": entry(1)})
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ml.lock"]  # no temp file left behind


WRITER = """
import sys
from pathlib import Path
from mlops_bot.pipeline.cache import LockEntry, write_lock
path = Path(sys.argv[1])
big = {f"dep{i:05d}.csv": "%064d" % i for i in range(800)}
n = 0
while True:
    n += 1
    write_lock(path, {f"s{j}": LockEntry(key=str(n), cmd="x", deps=big, params={}, env="e") for j in range(3)})
    print(n, flush=True)
"""


@pytest.mark.slow  # kills a writer 0.35, 0.5 and 0.65 s in
def test_lock_survives_a_kill_during_writes(tmp_path: Path) -> None:
    path = tmp_path / "ml.lock"
    for delay in (0.35, 0.5, 0.65):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE)
        assert proc.stdout is not None
        proc.stdout.readline()  # at least one complete write
        time.sleep(delay)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        entries = read_lock(path)
        assert sorted(entries) == ["s0", "s1", "s2"]
        assert len({e.key for e in entries.values()}) == 1 and len(entries["s0"].deps) == 800


def test_params_are_read_by_dotted_key(tmp_path: Path) -> None:
    (tmp_path / "params.yaml").write_text("seed: 3\ntrain: {C: 0.5, layers: [1, 2]}\n")
    steps = {"t": Step("t", "x", params=("seed", "train.C", "train.layers"))}
    assert cache.load_params(tmp_path, "params.yaml", steps) == {"seed": 3, "train.C": 0.5, "train.layers": [1, 2]}


def test_missing_param_names_file_and_key(tmp_path: Path) -> None:
    (tmp_path / "params.yaml").write_text("train: {C: 0.5}\n")
    steps = {"t": Step("t", "x", params=("train.gamma",))}
    with pytest.raises(UsageError, match=r"params.yaml: has no param 'train.gamma' \(declared by step 't'\)"):
        cache.load_params(tmp_path, "params.yaml", steps)
    with pytest.raises(UsageError, match=r"other.yaml: the params file does not exist"):
        cache.load_params(tmp_path, "other.yaml", steps)
    with pytest.raises(UsageError, match=r"step 't' declares params but ml.yaml names no params file"):
        cache.load_params(tmp_path, None, steps)


def test_no_declared_params_need_no_file(tmp_path: Path) -> None:
    assert cache.load_params(tmp_path, "absent.yaml", {"t": Step("t", "x")}) == {}


def make_project(root: Path, data: str) -> None:
    (root / "data.csv").write_text(data)
    (root / "prep.py").write_text("p")


PIPE = {"prep": Step("prep", "python prep.py", deps=("prep.py", "data.csv"), outs=("build/clean.csv",)),
        "train": Step("train", "python t.py", deps=("build/clean.csv",), outs=("build/model",), params=("C",))}


def pkey(root: Path, params: dict[str, object]) -> str:
    return cache.pipeline_key(PIPE, dag.edges(PIPE), Hasher(root, root / ".s"), params)


def test_pipeline_key_needs_no_produced_files_and_is_the_same_in_any_directory(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    make_project(one, "1,2\n")
    make_project(two, "1,2\n")
    (two / "build").mkdir()
    (two / "build" / "clean.csv").write_text("produced files do not enter the pipeline key")
    assert pkey(one, {"C": 1}) == pkey(two, {"C": 1})
    assert pkey(one, {"C": 1}) != pkey(one, {"C": 2})
    (two / "data.csv").write_text("1,3\n")
    assert pkey(one, {"C": 1}) != pkey(two, {"C": 1})
