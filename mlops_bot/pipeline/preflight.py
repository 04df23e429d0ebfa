"""Checked before the work: where the experiment keeps its artifacts, so a run that could never upload its
model stops before the first step trains it.

The REST registry writes artifacts only through the tracking server's proxy (`mlflow-artifacts:/`,
registry/mlflow/artifacts.py); the embedded store writes its own files and is always fine.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from ..errors import UsageError
from ..registry.base import Experiment
from ..support.urls import redact

WRITABLE_SCHEMES = ("mlflow-artifacts",)


def check_artifact_location(experiment: Experiment, embedded: bool) -> None:
    """UsageError (exit 2) naming the location and what to do when the bot cannot write there. An empty
    location (a server that does not say) passes: the upload itself will tell."""
    location = experiment.artifact_location.strip()
    if embedded or not location:
        return
    try:
        scheme = urlsplit(location).scheme.lower()
    except ValueError:  # e.g. an unclosed '[' where a host would be
        scheme = ""
    if scheme in WRITABLE_SCHEMES:
        return
    raise UsageError(
        f"experiment '{experiment.name}' keeps its artifacts at {redact(location)}, where mlops-bot cannot write "
        "(it uploads through the tracking server's artifact proxy, mlflow-artifacts:/, only); nothing was run. "
        "Start the server with --serve-artifacts (and no --default-artifact-root of another kind), or name a new "
        "experiment in ml.yaml once the server proxies artifacts, or use the embedded store (tracking.uri: "
        "local); S3, Azure Blob and GCS locations are not supported yet.")
