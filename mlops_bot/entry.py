"""The `mlops-bot` console script. A plain `mlops-bot [-C DIR] run` in a project where provably nothing changed
since its last fully cached run is answered here, from the record of pipeline/noop, before argparse, typing,
pathlib and the command machinery are imported: they are half of such a run. Everything else is cli.main's."""

import os
import sys
import time


def main() -> int:
    started = time.monotonic()
    argv = sys.argv[1:]
    directory = _plain_run(argv)
    if directory is not None and _replay(directory, started):
        return 0
    from .cli import main as cli_main

    return cli_main(argv)


def _plain_run(argv: list[str]) -> str | None:
    """The project directory of `run` with no option but -C; None for any other command line."""
    if argv == ["run"]:
        return "."
    if len(argv) == 3 and argv[0] == "-C" and argv[2] == "run":
        return argv[1]
    return None


def _replay(directory: str, started: float) -> bool:
    """Prints what flows/run prints for a replayed no-op; False (nothing printed) on any doubt."""
    from . import __version__
    from .pipeline.noop import replay
    from .pipeline.summary import cached_lines, summary

    doc = replay(os.path.join(directory, "ml.yaml"), __version__)
    if doc is None:
        return False
    done = {**doc, "duration_s": round(time.monotonic() - started, 3)}
    for line in [*cached_lines(done), summary(done)]:
        print(line, file=sys.stderr, flush=True)  # console.log's way, without importing it
    return True
