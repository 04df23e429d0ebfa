"""What a CI job keeps besides the comment: the job summary, step outputs, masks and one-time warnings on
GitHub Actions; a dotenv report and an OpenMetrics metrics report on GitLab CI.

GitHub: the summary is appended to $GITHUB_STEP_SUMMARY; outputs go to $GITHUB_OUTPUT, multi-line values as
`name<<DELIMITER` blocks with a fresh random delimiter (a value containing it is refused, so a value can never
end its block early and forge other outputs). GitLab: `artifacts:reports:dotenv` (KEY=value lines only: no
quotes, no multi-line values) and `artifacts:reports:metrics` (`name value` lines of OpenMetrics text).
"""

from __future__ import annotations

import math
import re
import secrets
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TextIO

from ..console import log
from ..errors import DataError, UsageError
from ..support.urls import redact_text

DOTENV_FILE = "mlops-bot.env"
METRICS_FILE = "metrics.txt"
_OUTPUT_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
_METRIC_NAME = re.compile(r"[^a-zA-Z0-9_:]")


class CIOutput:
    def __init__(self, platform: str, env: Mapping[str, str], *, root: Path = Path("."),
                 stream: TextIO | None = None) -> None:
        self.platform = platform
        self._env = env
        self._root = root
        self._stream = stream  # where workflow commands go: stdout, or stderr when stdout carries --json
        self._warned: set[str] = set()

    @property
    def github(self) -> bool:
        return self.platform == "github"

    def summary(self, markdown: str) -> Path | None:
        """Appends to the GitHub job summary; None where there is none."""
        target = self._env.get("GITHUB_STEP_SUMMARY", "") if self.github else ""
        if not target:
            return None
        _append(Path(target), markdown if markdown.endswith("\n") else markdown + "\n", "GITHUB_STEP_SUMMARY")
        return Path(target)

    def outputs(self, values: Mapping[str, str]) -> Path | None:
        """Step outputs on GitHub, the dotenv report on GitLab (keys MLOPS_BOT_<NAME>); None locally."""
        if self.github:
            target = self._env.get("GITHUB_OUTPUT", "")
            if not target:
                return None
            _append(Path(target), "".join(github_output(k, v) for k, v in values.items()), "GITHUB_OUTPUT")
            return Path(target)
        if self.platform == "gitlab":
            return self._dotenv(values)
        return None

    def _dotenv(self, values: Mapping[str, str]) -> Path:
        """Merged into the file (later calls add keys), as KEY=value lines: GitLab's parser knows no quoting."""
        path = self._root / self._env.get("MLOPS_BOT_DOTENV", DOTENV_FILE)
        entries = _read_dotenv(path)
        for name, value in values.items():
            key = "MLOPS_BOT_" + re.sub(r"[^A-Z0-9_]", "_", name.upper())
            if "\n" in value or "\r" in value:
                log(f"mlops-bot: {key} is not in {path.name}: GitLab's dotenv reports cannot hold multi-line values.")
                continue
            entries[key] = value
        _write(path, "".join(f"{k}={v}\n" for k, v in entries.items()))
        return path

    def metrics(self, metrics: Mapping[str, float], prefix: str = "") -> Path | None:
        """The OpenMetrics metrics report GitLab shows on merge requests; None on other platforms."""
        if self.platform != "gitlab":
            return None
        path = self._root / self._env.get("MLOPS_BOT_METRICS_REPORT", METRICS_FILE)
        _write(path, openmetrics(metrics, prefix))
        return path

    def mask(self, secret: str) -> None:
        """Asks the GitHub runner to hide `secret` in later log lines (each line of it)."""
        if not self.github:
            return
        for line in secret.splitlines():
            if line.strip():
                self._command(f"::add-mask::{line}")

    def warning(self, message: str, key: str = "") -> bool:
        """Warns once per `key` (the message by default); True when this call warned."""
        key = key or message
        if key in self._warned:
            return False
        self._warned.add(key)
        message = redact_text(message)
        log(f"mlops-bot: warning: {message}")
        if self.github:
            self._command(f"::warning::{_escape(message)}")
        return True

    def _command(self, line: str) -> None:
        stream = self._stream or sys.stdout
        stream.write(line + "\n")
        stream.flush()


def github_output(name: str, value: str) -> str:
    """One output in $GITHUB_OUTPUT's syntax: `name=value`, or a heredoc block for a multi-line value."""
    if not _OUTPUT_NAME.match(name):
        raise UsageError(f"{name!r} is not a valid GitHub output name (letters, digits, '_' and '-').")
    if "\n" not in value and "\r" not in value:
        return f"{name}={value}\n"
    delimiter = f"ghadelimiter_{secrets.token_hex(16)}"
    if delimiter in value:  # 128 random bits: only a value crafted after the fact could contain it
        raise DataError(f"the value of output {name!r} contains its heredoc delimiter; it is not written.")
    return f"{name}<<{delimiter}\n{value}\n{delimiter}\n"


def openmetrics(metrics: Mapping[str, float], prefix: str = "") -> str:
    lines = []
    for name, value in metrics.items():
        metric = _METRIC_NAME.sub("_", f"{prefix}{name}")
        if not metric or metric[0].isdigit():
            metric = f"_{metric}"
        lines.append(f"{metric} {_number(value)}\n")
    return "".join(lines) + "# EOF\n"


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def _escape(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _append(path: Path, text: str, variable: str) -> None:
    try:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(text)
    except OSError as exc:
        raise DataError(f"cannot append to {variable} file {path} ({exc.strerror}); the runner sets it to a "
                        "writable file.") from exc


def _read_dotenv(path: Path) -> dict[str, str]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return {}
    return dict(line.split("=", 1) for line in lines if "=" in line)


def _write(path: Path, text: str) -> None:
    from ..support.files import write_atomic

    write_atomic(path, text)
