"""Checked before the work: that the run's artifacts can be uploaded where the experiment keeps them, so a
run that could never upload its model stops before the first step trains it.

The registry writes a small note at the experiment's artifact location (through the tracking server's proxy,
or the store's own client for s3://, wasbs://, gs://, file://...): a missing extra, missing credentials, a
missing bucket or a read-only directory fails here, with the store's own reason and what to do.
"""

from __future__ import annotations

from ..errors import RemoteError, UsageError
from ..registry.base import Experiment, Registry
from ..support.urls import redact


def check_artifact_location(registry: Registry, experiment: Experiment, embedded: bool) -> None:
    """UsageError (exit 2) or RemoteError (exit 3) naming the location and what to do when the bot cannot
    write there. An empty location (a server that does not say) passes: the upload itself will tell."""
    location = experiment.artifact_location.strip()
    if embedded or not location:
        return
    try:
        registry.check_artifact_location(location)
    except UsageError as exc:
        raise UsageError(f"experiment '{experiment.name}' keeps its artifacts at {redact(location)}, where "
                         f"mlops-bot cannot write: {str(exc).rstrip('.')}; nothing was run.") from None
    except RemoteError as exc:
        raise RemoteError(exc.service, exc.status, exc.url,
                          f"{exc.detail}; experiment '{experiment.name}' keeps its artifacts at "
                          f"{redact(location)}, which could not be written; nothing was run.") from None
