"""The current data of `mlops-bot drift`: `--current PATH`, or `monitor.current` of ml.yaml (a path or glob under
the project, an http(s) URL downloaded by `drift_fetch`, or a command that writes the file, run as a pipeline step
is: in the project, its own process group, a timeout, and only the environment a step may see, no secret).

Names from ml.yaml are confined to the project (support/paths), also through symbolic links; a path given on the
command line is the operator's own and is taken as it is.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..config.model import Config, CurrentData
from ..console import log
from ..drift.readers import SUFFIXES
from ..errors import DataError, StepFailed, UsageError
from ..support import processes
from ..support.environment import child_environment
from ..support.paths import inside_project, normalise
from ..support.urls import redact

TABULAR = tuple(SUFFIXES)  # what mlops_bot.drift reads
GLOB_CHARS = frozenset("*?[")
CURRENT_STEP = "monitor.current"  # how the fetching command's output lines are prefixed


@dataclass(frozen=True)
class Source:
    """Files to read as one table, and what messages, the report and the monitoring run call them."""

    paths: tuple[Path, ...]
    label: str
    fetched: bool = False  # downloaded into a temp directory: reports name `label`, not the temp files


def project_files(root: Path, pattern: str, what: str) -> tuple[Path, ...]:
    """The files `pattern` (a path, a directory of data files, or a glob, relative to `root`) names, sorted;
    UsageError when it leads out of the project, DataError when nothing matches."""
    norm = normalise(pattern)
    if not inside_project(norm):
        raise UsageError(f"{what}: {pattern!r} is not a path inside the project ({root}); use a relative path.")
    found = _expand(root, norm)
    base = Path(os.path.realpath(root))
    outside = [p for p in found if not Path(os.path.realpath(p)).is_relative_to(base)]
    if outside:
        raise UsageError(f"{what}: {outside[0]} leads out of the project through a symbolic link; the bot reads "
                         "only files inside it.")
    if not found:
        raise DataError(f"{what}: no data file matches {pattern!r} in {root}; check the path (or glob) and that "
                        "the data is there, or pass --current PATH.")
    return found


def given_files(directory: Path, value: str) -> tuple[Path, ...]:
    """`--current PATH`: a file, a directory of data files or a glob, relative to -C DIR."""
    found = _expand(directory, value)
    if not found:
        raise UsageError(f"--current: no data file matches {value!r} (in {directory}); give an existing .csv, .tsv "
                         "or .parquet file, a directory of them, or a glob.")
    return found


def _expand(base: Path, pattern: str) -> tuple[Path, ...]:
    if GLOB_CHARS & set(pattern):  # relative to base, whose own name may hold '[' (not part of the pattern)
        hits = [base / p for p in glob.glob(pattern, root_dir=base, recursive=True)]
        return tuple(sorted(p for p in hits if p.is_file()))
    path = base / pattern
    if path.is_dir():
        return tuple(sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in TABULAR))
    return (path,) if path.is_file() else ()


def current_data(config: Config, env: Mapping[str, str], override: tuple[Path, str] | None,
                 workdir: Path) -> Source:
    """The current batch: `override` ((-C DIR, --current PATH)) or monitor.current. Downloads go to `workdir`."""
    root = config.root
    if override is not None:
        directory, value = override
        return Source(given_files(directory, value), value)
    assert config.monitor is not None
    where = config.monitor.current
    if where.url:
        from .drift_fetch import download

        return Source((download(where.url, workdir, config.monitor.max_mb),), redact(where.url), fetched=True)
    assert where.path is not None
    if where.cmd is not None:
        run_fetch(config, where, env)
    return Source(project_files(root, where.path, "monitor.current.path"), where.path)


def run_fetch(config: Config, where: CurrentData, env: Mapping[str, str]) -> None:
    """Runs monitor.current.cmd in the project as a pipeline step runs: no secret of the job (only what
    pass_env names besides what programs need), output prefixed, stopped with its group at the timeout."""
    assert where.cmd is not None
    argv = ["/bin/sh", "-c", where.cmd] if isinstance(where.cmd, str) else list(where.cmd)
    seen = {"PYTHONUNBUFFERED": "1", **child_environment(env, where.pass_env, secrets=config.secret_names)}
    launch = processes.Launch(argv, config.root, seen, f"[{CURRENT_STEP}] ", log)
    log(f"mlops-bot drift: fetching the current data: {CURRENT_STEP}.cmd")
    try:
        done = processes.run(launch, where.timeout)
    except OSError as exc:
        raise StepFailed(CURRENT_STEP, None, f"{CURRENT_STEP}.cmd could not start '{argv[0]}' "
                         f"({exc.strerror or exc}); install it or fix monitor.current.cmd in ml.yaml.") from None
    if done.code == 0:
        return
    why = (f"timed out after {where.timeout:g}s and was stopped; raise monitor.current.timeout" if done.code is None
           else f"failed with exit code {done.code}")
    raise StepFailed(CURRENT_STEP, done.code, f"{CURRENT_STEP}.cmd {why}; "
                     f"{'its last lines:' if done.tail else 'it printed nothing.'}", "\n".join(done.tail))
