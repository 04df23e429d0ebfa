"""The one error handler: exit codes, one-line messages, fast and light start-up."""

from __future__ import annotations

import argparse
import os
import pkgutil
import re
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest

from mlops_bot import cli
from mlops_bot.errors import RemoteError, StepFailed


def fake_command(monkeypatch: pytest.MonkeyPatch, raising: BaseException) -> None:
    module = types.ModuleType("mlops_bot.flows.fake")

    def configure(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--flag", action="store_true")

    def main(args: argparse.Namespace, project: object) -> int:
        raise raising

    module.configure = configure  # type: ignore[attr-defined]
    module.main = main  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "mlops_bot.flows.fake", module)
    monkeypatch.setitem(cli.COMMANDS, "fake", ("fake", "a test command"))


@pytest.mark.parametrize(("raising", "code"), [
    (RemoteError("MLflow", 503, "http://127.0.0.1:1/api/2.0/mlflow/runs/get", "unavailable"), 3),
    (StepFailed("train", 2, "step 'train' exited with 2"), 3),
    (KeyboardInterrupt(), 130),
])
def test_expected_failures_map_to_exit_codes(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                             raising: BaseException, code: int) -> None:
    fake_command(monkeypatch, raising)
    assert cli.main(["fake"]) == code
    assert "Traceback" not in capsys.readouterr().err


def test_internal_error_is_one_line_and_a_traceback_file(monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    fake_command(monkeypatch, ZeroDivisionError("boom"))
    assert cli.main(["fake"]) == 4
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "ZeroDivisionError: boom" in err
    path = Path(re.search(r"(/\S+mlops-bot-traceback-\S+\.txt)", err).group(1))  # type: ignore[union-attr]
    assert "ZeroDivisionError" in path.read_text()
    path.unlink()
    with pytest.raises(ZeroDivisionError):
        cli.main(["--traceback", "fake"])


def test_bad_usage_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        cli.main(["validate", "--no-such-option"])
    assert caught.value.code == 2
    assert cli.main([]) == 2


def test_version_imports_nothing_heavy() -> None:
    code = ("import sys\nfrom mlops_bot.cli import main\n"
            "try:\n    main(['--version'])\nexcept SystemExit:\n    pass\n"
            "heavy = {'httpx', 'github', 'gitlab', 'jsonschema', 'yaml', 'requests', 'sqlite3', 'psycopg', 'ray',\n"
            "         'kubernetes'}\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().endswith("[]"), out


def test_a_no_op_run_is_answered_before_argparse_with_the_full_paths_words(tmp_path: Path) -> None:
    """entry.py replays a fully cached run from pipeline/noop's record before argparse, typing or pathlib load,
    printing what `run` prints; anything it cannot answer goes to cli.main."""
    root = tmp_path / "p"
    root.mkdir()
    (root / "ml.yaml").write_text("version: 1\nmodel: {name: m, artifact: out.txt}\n"
                                  "pipeline:\n  make: {cmd: [python, -c, \"open('out.txt', 'w').write('1')\"], "
                                  "outs: [out.txt]}\n")
    # what start-up loaded already (an editable install's import finder loads pathlib) does not count
    code = ("import sys\nbefore = set(sys.modules)\nfrom mlops_bot.entry import main\n"
            "sys.argv = ['mlops-bot', *sys.argv[1:]]\nstatus = main()\n"
            "print(status, sorted(m for m in ('argparse', 'typing', 'pathlib', 'mlops_bot.cli') "
            "if m in sys.modules and m not in before))")
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}

    def bot(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, env=env,
                              check=True, cwd=root)

    first = bot("run")  # runs the step: the full path
    assert first.stdout.split(" ", 1)[0] == "0" and "'mlops_bot.cli'" in first.stdout
    old = time.time() - 10  # older than the timestamp window, as files are a while after the run that wrote them
    for name in ("ml.yaml", "ml.lock", "out.txt"):
        os.utime(root / name, (old, old))
    bot("run")  # all cached: the full path records the no-op
    replayed = bot("-C", str(root), "run")
    assert replayed.stdout.strip() == "0 []", replayed.stdout  # nothing heavy: answered by entry.py
    full = bot("run", "--json")  # an option: the full path, with the same words
    assert "'mlops_bot.cli'" in full.stdout
    words = [re.sub(r"done in [0-9.]+s", "done in Xs", line) for line in replayed.stderr.splitlines()]
    assert words == [re.sub(r"done in [0-9.]+s", "done in Xs", line) for line in full.stderr.splitlines()]
    assert words[-1].startswith("mlops-bot: pipeline done in Xs: 1 cached; run ")


def test_pure_modules_import_no_network_or_forge_library() -> None:
    import mlops_bot.config
    import mlops_bot.decide
    import mlops_bot.report

    pure = [m.name for package in (mlops_bot.config, mlops_bot.decide, mlops_bot.report)
            for m in pkgutil.iter_modules(package.__path__, package.__name__ + ".")] + ["mlops_bot.pipeline.dag"]
    assert "mlops_bot.config.semantics" in pure
    code = ("import importlib, sys\n"
            f"for name in {pure!r}:\n    importlib.import_module(name)\n"
            "net = {'httpx', 'github', 'gitlab', 'requests', 'urllib3', 'socket', 'http'}\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in net and m != 'socket'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out
