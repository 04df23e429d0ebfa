"""`mlops-bot ui`: the embedded store (`tracking.uri: local`) in MLflow's own UI.

Exports the embedded store into MLflow's own store under `.mlops-bot/mlflow/` (registry/local/export: runs,
metrics, params, artifacts, registered models and aliases, regenerated each time) and runs `mlflow ui` on it,
bound to 127.0.0.1 unless `--host` says otherwise. `--export-only` writes the export and prints the command.
Needs mlflow (`pip install 'mlops-bot[ui]'`); a tracking server has a UI of its own.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import subprocess
import sys

from ..console import emit_json, log
from ..errors import UsageError
from .project import Project


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="the address mlflow ui listens on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=5000, help="its port (default 5000)")
    parser.add_argument("--export-only", action="store_true",
                        help="write the export and print the `mlflow ui` command instead of running it")


def main(args: argparse.Namespace, project: Project) -> int:
    from ..registry.local.export import export_store
    from ..registry.local.store import LocalRegistry

    config = project.config
    registry = project.registry
    if not isinstance(registry, LocalRegistry):
        raise UsageError(f"{config.path.name}: tracking.uri is a tracking server: open its own UI; `mlops-bot ui` "
                         "shows the embedded store (tracking.uri: local).")
    exported = export_store(registry)
    command = exported.ui_command(args.host, args.port)
    if args.json:
        emit_json({"directory": str(exported.directory), "backend_store_uri": exported.backend_store_uri,
                   "artifact_root": str(exported.artifact_root), "runs": exported.runs, "models": exported.models,
                   "command": command})
    else:
        print(shlex.join(command))
    log(f"mlops-bot: exported {exported.runs} runs and {exported.models} registered models to {exported.directory}")
    if args.export_only:
        return 0
    program = shutil.which("mlflow")
    argv = [program, *command[1:]] if program else [sys.executable, "-m", "mlflow", *command[1:]]
    return subprocess.call(argv, cwd=config.root)
