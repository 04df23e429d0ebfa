"""Runs one pipeline step on a cluster and returns its outs through the tracking run's artifacts.

`python -m mlops_bot.pipeline.remote_entry --run-id ID --step NAME [--out PATH]... [--model PATH]
[--workdir-artifact PATH] -- COMMAND...`; for the champion's rescoring also `--fetch ARTIFACT=DEST` (the model, from
the run), `--optional-out PATH`, `--out-dir FOLDER` (the results, by name, in one folder of the run) and
`--scratch-tracking` (the step logs to a throwaway store, as a local rescoring does).

Imports nothing of mlops_bot and only the standard library until the outs are uploaded with mlflow, so a cluster
needs Python and mlflow (which a step that logs to MLflow has anyway). The step runs as a child in the wrapper's
process group, so a cancelled Ray job or a deleted Kubernetes Job ends it too. The exit code is the step's own
(128 + n when signal n ended it); 0 only when every out exists and was uploaded (a missing out or a failed upload
exits 3).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

UPLOADED = "mlops-bot-remote: outs uploaded to run"  # the bot's logs and tests look for this line


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        print("mlops-bot-remote: no command after --", file=sys.stderr)
        return 2
    if args.workdir_artifact:
        _unpack(args.run_id, args.workdir_artifact)
    for spec in args.fetch:
        _fetch(args.run_id, spec)
    code = _run(command, _scratch_environment() if args.scratch_tracking else None)
    if code != 0:
        return code
    outs = args.out + [out for out in args.optional_out if Path(out).exists()]
    return _upload(args.run_id, outs, args.model, args.out_dir)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mlops_bot.pipeline.remote_entry")
    parser.add_argument("--run-id", required=True)
    parser.add_argument("--step", required=True)
    parser.add_argument("--out", action="append", default=[])
    parser.add_argument("--model")
    parser.add_argument("--workdir-artifact")
    # the champion's rescoring (lifecycle/rescore_remote): its model fetched from the run, its results uploaded
    # under one folder of the run, and whatever the step logs kept out of the tracking server
    parser.add_argument("--fetch", action="append", default=[], metavar="ARTIFACT=DEST")
    parser.add_argument("--optional-out", action="append", default=[])
    parser.add_argument("--out-dir")
    parser.add_argument("--scratch-tracking", action="store_true")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    return parser


def _unpack(run_id: str, artifact: str) -> None:
    """The working directory the bot uploaded (for backends that cannot ship one), extracted here."""
    import mlflow

    with tempfile.TemporaryDirectory() as tmp:
        archive = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=artifact, dst_path=tmp)
        with tarfile.open(archive) as tar:
            if not hasattr(tarfile, "data_filter"):  # Python before 3.10.12 cannot confine the extraction
                raise SystemExit("mlops-bot-remote: this Python cannot extract an archive safely; use 3.10.12+")
            tar.extractall(".", filter="data")  # refuses absolute paths, links out and device files


def _fetch(run_id: str, spec: str) -> None:
    """ARTIFACT=DEST: the run's artifact downloaded to DEST, a relative path inside the working directory."""
    import mlflow

    artifact, _, dest = spec.partition("=")
    target = Path(dest)
    if not artifact or not dest or target.is_absolute() or ".." in target.parts:
        raise SystemExit(f"mlops-bot-remote: --fetch wants ARTIFACT=DEST with a relative DEST, got {spec!r}")
    with tempfile.TemporaryDirectory(dir=".") as tmp:
        got = Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=artifact, dst_path=tmp))
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(got, target)


def _scratch_environment() -> dict[str, str]:
    """The step's environment without the tracking server: what it logs goes to a store that is thrown away."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DATABRICKS_"))}
    return {**env, "MLFLOW_TRACKING_URI": f"sqlite:///{Path('mlops-bot-scratch.db').resolve()}"}


def _run(command: list[str], env: dict[str, str] | None = None) -> int:
    """The step in our own process group: what the cluster sends the group (Ray stopping the job, a lost
    supervisor's SIGKILL) reaches the step too, and a SIGTERM sent to us alone (Kubernetes, to PID 1) is sent on to
    the group. A step ended by signal n exits 128 + n, as a shell reports it."""
    child = subprocess.Popen(command, env=env)

    def forward(signum: int, _frame: object) -> None:
        signal.signal(signum, signal.SIG_IGN)  # the group's copy of it is not for us
        with contextlib.suppress(ProcessLookupError):
            os.killpg(os.getpgrp(), signum)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, forward)
    code = child.wait()
    return 128 - code if code < 0 else code


def _log(client: object, run_id: str, path: Path, artifact_dir: str) -> None:
    if path.is_dir():
        client.log_artifacts(run_id, str(path), artifact_dir)  # type: ignore[attr-defined]
    else:
        client.log_artifact(run_id, str(path), artifact_dir)  # type: ignore[attr-defined]


def _upload(run_id: str, outs: list[str], model: str | None, out_dir: str | None = None) -> int:
    missing = [out for out in outs if not Path(out).exists()]
    if missing:
        print(f"mlops-bot-remote: the step exited 0 but did not write {', '.join(missing)}", file=sys.stderr)
        return 3
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    try:
        for out in outs:
            path = Path(out)
            if out_dir is not None:  # flat, by name: the rescoring's record folder
                _log(client, run_id, path, out_dir if path.is_file() else f"{out_dir}/{path.name}")
            elif out == model:  # where Tracker.upload puts the model: under model/, never twice
                _log(client, run_id, path, "model")
            elif path.is_dir():
                client.log_artifacts(run_id, out, f"outs/{out}")
            else:
                parent = str(Path(out).parent)
                client.log_artifact(run_id, out, "outs" if parent == "." else f"outs/{parent}")
    except Exception as exc:  # the step's work is done: say why it cannot be returned
        print(f"mlops-bot-remote: uploading the outs to run {run_id} failed: {type(exc).__name__}: {exc}",
              file=sys.stderr)
        return 3
    print(f"{UPLOADED} {run_id}: {', '.join(outs) or 'no outs'}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
