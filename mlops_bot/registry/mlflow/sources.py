"""The source of a new model version, as the server wants it (no I/O here).

MLflow OSS keeps the source it is given (`<run artifact URI>/model`, or `models:/<model_id>`). Azure ML registers
from run outputs only as `runs:/<run-id>/<path>`, and only MLflow Models (a directory with an MLmodel file):
another source is refused with INVALID_PARAMETER_VALUE ("Model source from file must be in the following format:
azureml://artifacts/..."). MlflowModels learns it from that refusal, repeats the create with the `runs:/` form of
the same directory, and from then on sends that form first; a refusal of the `runs:/` form is the "not an MLflow
Model" one, which `not_a_model` turns into what to do.
"""

from __future__ import annotations

from collections.abc import Callable

from ...errors import InvalidParameter

RUNS = "runs:/"


def runs_source(source: str, run_id: str, artifact_uri: str) -> str | None:
    """`runs:/<run_id>/<path>` for a source below the run's artifact URI; None for any other source."""
    base = artifact_uri.rstrip("/")
    if not base or source.startswith(RUNS) or not source.startswith(base + "/"):
        return None
    path = source[len(base) + 1:].strip("/")
    return f"{RUNS}{run_id}/{path}" if path else None


def not_a_model(refused: InvalidParameter, name: str, source: str) -> InvalidParameter:
    """The refusal of a `runs:/` source: the server's answer, and what to do about it."""
    path = source.split("/", 2)[2] if source.startswith(RUNS) and source.count("/") >= 2 else source
    return InvalidParameter(refused.service, refused.status, refused.url, (
        f"{refused.detail}; the server refused to register {source} as a version of {name}. It registers MLflow "
        f"Models only (Azure ML): save the model with mlflow.<flavor>.save_model so that '{path}/MLmodel' is among "
        "the run's artifacts (mlops-bot uploads model.artifact of ml.yaml as 'model'), run again, then promote. "
        "Nothing was registered."))


def explained(refused: InvalidParameter, name: str, source: str) -> InvalidParameter:
    """A refused create: with what to do when it refused a `runs:/` source, as it was otherwise."""
    return not_a_model(refused, name, source) if source.startswith(RUNS) else refused


class VersionSource:
    """The source one create_model_version was given, and its `runs:/` form (the run read once, when needed)."""

    def __init__(self, given: str, run_id: str, artifact_uri_of: Callable[[str], str]) -> None:
        self.given, self._run_id, self._artifact_uri_of = given, run_id, artifact_uri_of
        self._runs: str | None = None
        self._known = False

    def runs_form(self) -> str | None:
        if not self._known:
            self._runs, self._known = runs_source(self.given, self._run_id, self._artifact_uri_of(self._run_id)), True
        return self._runs

    def matches(self, source: str) -> bool:
        """Whether an existing version's source is this one, in either form (nothing is registered twice)."""
        if source == self.given:
            return True
        return source.startswith(RUNS) and not self.given.startswith(RUNS) and source == self.runs_form()
