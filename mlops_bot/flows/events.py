"""`mlops-bot events`: read the audit log (.mlops-bot/events/audit.jsonl and its rotated files).

A table by default (time, type, subject, details); `--json` prints the events as one JSON array, or with
`--follow` one JSON object a line as they come. `--type T` keeps events of type T, of a type it is a synonym
of (alias.moved ~ model_version.alias_set), or under it (`--type deployment` keeps deployment.*).
The log is read without ml.yaml having to load: only its directory matters.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Sequence

from ..console import emit_json
from ..errors import EXIT_OK, UsageError
from ..events.audit import EventLog, events_dir
from ..events.event import Event
from ..events.rules import kind
from .project import Project

DETAILS_WIDTH = 90


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--type", action="append", default=[], metavar="T",
                        help="only events of this type or under it (repeatable), e.g. deployment.failed, deployment")
    parser.add_argument("--last", type=int, metavar="N", help="only the last N events (before following)")
    parser.add_argument("--follow", "-f", action="store_true", help="keep printing events as they are logged")


def wanted(event: Event, types: Sequence[str]) -> bool:
    return not types or any(event.type == t or kind(event.type) == kind(t) or event.type.startswith(t + ".")
                            for t in types)


def _details(event: Event) -> str:
    text = " ".join(f"{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in sorted(event.data.items()))
    return text if len(text) <= DETAILS_WIDTH else text[:DETAILS_WIDTH - 3] + "..."


def _row(event: Event) -> tuple[str, str, str, str]:
    return event.time, event.type, event.subject, _details(event)


def print_table(events: Iterable[Event], header: bool = True) -> None:
    rows = [_row(e) for e in events]
    if header:
        rows.insert(0, ("TIME", "TYPE", "SUBJECT", "DETAILS"))
    if not rows:
        return
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for row in rows:
        print("  ".join(row[i].ljust(widths[i]) for i in range(3)) + "  " + row[3], flush=True)


def main(args: argparse.Namespace, project: Project) -> int:
    if args.last is not None and args.last < 0:
        raise UsageError("--last must be 0 or more.")
    root = project.config_path.parent
    log = EventLog(events_dir(root))
    events, position = log.snapshot()
    events = [e for e in events if wanted(e, args.type)]
    if args.last is not None:
        events = events[len(events) - args.last:] if args.last else []
    if args.json and not args.follow:
        emit_json([e.to_dict() for e in events])
        return EXIT_OK
    if args.json:
        for event in events:
            print(event.to_json(), flush=True)
    else:
        print_table(events)
    if args.follow:
        for event in log.follow(position):
            if wanted(event, args.type):
                if args.json:
                    print(event.to_json(), flush=True)
                else:
                    print_table([event], header=False)
    elif not events and not args.json:
        print(f"no events{' of type ' + ', '.join(args.type) if args.type else ''} in {log.directory}",
              file=sys.stderr)
    return EXIT_OK
