"""argparse and dispatch. Each command lives in `flows/<name>.py` with `configure(parser)` and
`main(args, project) -> int`; only the chosen command's module is imported, so start-up stays fast.

cli owns a command's run: it makes the Project (ml.yaml and registry, closed at the end) and, for CI mode,
the deferred event Bus that is active while the command runs and meets the `on:` rules after it."""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING

from . import __version__
from .errors import EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_OK, BotError, ConfigError

if TYPE_CHECKING:
    from .events.bus import Bus
    from .flows.project import Project

# command -> (module under flows/, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "validate": ("validate", "check ml.yaml against the schema and for consistency"),
    "run": ("run", "run the training pipeline, skipping steps whose inputs did not change"),
    "compare": ("compare", "compare the challenger with the champion under the criteria"),
    "report": ("report", "post a decision as the PR/MR comment, commit status, job summary and CI outputs"),
    "promote": ("promote", "register the challenger and make it the champion when the criteria pass"),
    "deploy": ("deploy", "deploy the champion (or a version) to the deploy targets"),
    "rollout": ("rollout", "continue the rollouts in progress (deploy[].rollout): analyse, advance, or roll back"),
    "gate": ("gate", "release gate: exit 0 only if the version is the champion and carries required tags"),
    "rollback": ("rollback", "make the previous champion the champion again and redeploy it"),
    "status": ("status", "show the champion, the previous one and recent versions with their verdicts"),
    "history": ("history", "which version held an alias when, who moved it, why, and its deploys (--alias, --at)"),
    "ci": ("ci", "in GitHub Actions or GitLab CI: check a PR/MR, promote on merge, gate a release"),
    "serve": ("serve", "receive signed MLflow/GitHub/GitLab webhooks and run the `on:` rules of ml.yaml"),
    "watch": ("watch", "poll the tracking server and registry for changes and run the `on:` rules"),
    "drift": ("drift", "compare the data the champion sees now with its training data (monitor: in ml.yaml)"),
    "events": ("events", "read the audit log of events (--follow, --type T, --json)"),
    "ui": ("ui", "show the embedded store (tracking.uri: local) in MLflow's UI: export it and run `mlflow ui`"),
    "chatops": ("chatops", "answer a /mlops-bot command in a pull/merge request comment (issue_comment, note)"),
}


def _base_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlops-bot",
        description="GitOps bot for machine learning.",
        epilog="Exit codes: 0 done/passed, 1 negative decision, 2 bad usage or configuration, "
        "3 runtime failure, 4 internal error, 130 interrupted.",
    )
    parser.add_argument("--version", action="version", version=f"mlops-bot {__version__}")
    parser.add_argument("-C", dest="directory", default=".", metavar="DIR", help="run as if started in DIR")
    parser.add_argument("-c", "--config", default="ml.yaml", metavar="FILE", help="the ml.yaml to use")
    parser.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    parser.add_argument("--traceback", action="store_true", help="re-raise internal errors")
    return parser


def build_parser(command: str | None, everything: bool = False) -> argparse.ArgumentParser:
    """The full parser; only `command`'s module is imported (all of them for `--help`)."""
    parser = _base_parser()
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, summary) in COMMANDS.items():
        sub = subparsers.add_parser(name, help=summary, description=summary)
        # Options may follow the command too: `mlops-bot validate -c x.yaml --json`.
        sub.add_argument("-c", "--config", default=argparse.SUPPRESS, metavar="FILE", help="the ml.yaml to use")
        sub.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print JSON on stdout")
        if everything or command == name:
            importlib.import_module(f"mlops_bot.flows.{module}").configure(sub)
    return parser


def _command_of(argv: Sequence[str]) -> str | None:
    for arg in argv:
        if arg in COMMANDS:
            return arg
    return None


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """CI cancellation sends SIGTERM: handle it like Ctrl-C, so running steps and deploy commands are stopped
    with their process groups and nothing is left half-recorded."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run_command(args: argparse.Namespace) -> int:
    """The command with its Project, its events held on a Bus and handed to the `on:` rules when it is done
    (also when it failed: rules react to what happened, a deployment.failed included)."""
    from pathlib import Path

    from .events.bus import Bus, activate
    from .flows.project import Project

    module = importlib.import_module(f"mlops_bot.flows.{COMMANDS[args.command][0]}")
    bus = Bus(deferred=True)
    with Project(Path(args.directory), args.config) as project, activate(bus):
        try:
            code = int(module.main(args, project))
        except BotError:
            _run_rules(bus, project)
            raise
        _run_rules(bus, project)
        return code


def _run_rules(bus: Bus, project: Project) -> None:
    if bus.held:  # most commands' events; a no-op `run` has none and imports nothing more
        from .flows.actions import run_held_rules

        run_held_rules(bus, project)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = _command_of(argv)
    wants_help = command is None and any(a in ("-h", "--help") for a in argv)
    parser = build_parser(command, everything=wants_help)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    from .console import report_config_error, report_error, report_internal_error

    try:
        with _sigterm_as_interrupt():
            return _run_command(args)
    except ConfigError as exc:
        report_config_error(exc)
        return exc.exit_code
    except BotError as exc:
        report_error(exc)
        return exc.exit_code
    except KeyboardInterrupt:
        print("mlops-bot: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`mlops-bot status | head`): not an error; keep Python from complaining at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except Exception as exc:
        if args.traceback:
            raise
        report_internal_error(exc)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
