"""An ml.yaml the JSON Schema passed is not validated again while nothing its verdict depends on changed;
problems are never remembered, and the checks that read the disk run every time."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mlops_bot.cli import main as cli_main
from mlops_bot.config import load_config, schema
from mlops_bot.errors import ConfigError
from mlops_bot.support.state import VALIDATED_FILE, local_state_dir, state_path
from tests.helpers.ml_yaml import VALID


@pytest.fixture
def validations(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The files the JSON Schema was run on, in order."""
    seen: list[str] = []
    real = schema.schema_problems

    def counting(doc: Any) -> Any:
        seen.append(doc.file)
        return real(doc)

    monkeypatch.setattr(schema, "schema_problems", counting)
    return seen


@pytest.fixture
def ml_yaml(project: Callable[[str], Path]) -> Path:
    path = project(VALID)
    local_state_dir(state_path(path.parent))  # a project that has run before
    return path


def test_an_unchanged_file_is_validated_once(ml_yaml: Path, validations: list[str]) -> None:
    first = load_config(ml_yaml, env={})
    assert load_config(ml_yaml, env={}) == first
    assert len(validations) == 1
    assert state_path(ml_yaml.parent, VALIDATED_FILE).is_file()


def test_a_later_process_neither_validates_nor_imports_jsonschema(ml_yaml: Path) -> None:
    load_config(ml_yaml, env={})
    code = ("import sys\nfrom mlops_bot.config import load_config\nload_config(sys.argv[1], env={})\n"
            "print('jsonschema' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code, str(ml_yaml)], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_a_changed_byte_validates_again(ml_yaml: Path, validations: list[str]) -> None:
    load_config(ml_yaml, env={})
    ml_yaml.write_text(ml_yaml.read_text() + "#\n")  # a comment: the same document, other bytes
    load_config(ml_yaml, env={})
    ml_yaml.write_text(ml_yaml.read_text().replace("name: demo", "name: demo2"))
    load_config(ml_yaml, env={})
    assert len(validations) == 3


def test_another_schema_validates_again(ml_yaml: Path, validations: list[str],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    load_config(ml_yaml, env={})
    monkeypatch.setattr(schema, "schema_bytes", lambda: b'{"$comment": "another schema"}')
    load_config(ml_yaml, env={})
    assert len(validations) == 2


def test_another_value_of_an_interpolated_variable_validates_again(project: Callable[[str], Path],
                                                                  validations: list[str]) -> None:
    path = project(VALID.replace("name: demo,", "name: \"${MODEL}\","))
    local_state_dir(state_path(path.parent))
    load_config(path, env={"MODEL": "demo"})
    load_config(path, env={"MODEL": "demo"})
    with pytest.raises(ConfigError, match="not a valid model name"):
        load_config(path, env={"MODEL": "no spaces"})
    assert len(validations) == 2


def test_an_invalid_file_reports_its_problems_every_time(ml_yaml: Path, capsys: pytest.CaptureFixture[str],
                                                         validations: list[str]) -> None:
    ml_yaml.write_text(ml_yaml.read_text().replace("version: 1", "version: 1\nsurprise: 1"))
    for _ in range(2):
        assert cli_main(["-C", str(ml_yaml.parent), "validate"]) == 2
        assert "unknown key 'surprise'" in capsys.readouterr().err
    assert len(validations) == 2
    assert not state_path(ml_yaml.parent, VALIDATED_FILE).exists()


def test_the_checks_that_read_the_disk_run_on_a_remembered_file(ml_yaml: Path, validations: list[str]) -> None:
    load_config(ml_yaml, env={})
    (ml_yaml.parent / "prepare.py").unlink()
    with pytest.raises(ConfigError, match=r"'prepare\.py' does not exist"):
        load_config(ml_yaml, env={})
    assert len(validations) == 1


@pytest.mark.parametrize("content", ["{not json", '{"format": 99, "keys": []}', '["keys"]', '{"format": 1}', ""])
def test_a_damaged_or_foreign_record_is_ignored(ml_yaml: Path, validations: list[str], content: str) -> None:
    record = state_path(ml_yaml.parent, VALIDATED_FILE)
    record.write_text(content)
    load_config(ml_yaml, env={})
    assert len(validations) == 1
    assert json.loads(record.read_text())["format"] == 1
    load_config(ml_yaml, env={})
    assert len(validations) == 1


def test_a_record_planted_with_a_checkout_matches_nothing(ml_yaml: Path, validations: list[str]) -> None:
    # A pull request could commit .mlops-bot/ (git add -f): the key also holds the file's inode and ctime.
    load_config(ml_yaml, env={})
    copy = ml_yaml.with_name("copy.yaml")
    shutil.copyfile(ml_yaml, copy)
    os.replace(copy, ml_yaml)  # the same bytes in a new file, as a checkout writes them
    load_config(ml_yaml, env={})
    assert len(validations) == 2


def test_without_a_state_directory_nothing_is_written(project: Callable[[str], Path],
                                                      validations: list[str]) -> None:
    path = project(VALID)
    load_config(path, env={})
    load_config(path, env={})
    assert len(validations) == 2 and not state_path(path.parent).exists()
