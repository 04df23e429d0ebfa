"""Verification before traffic of an `azureml_endpoint` deployment: the evaluation rows sent to the new deployment
alone, through the endpoint's scoring URI, and compared by deploy/verify.py like mlflow_serve's.

The data plane, as Azure ML documents it: a request goes to one deployment, whatever the endpoint's traffic, with the
header `azureml-model-deployment: <deployment>` (learn.microsoft.com, how-to-safely-rollout-online-endpoints, "Test
the new deployment": `curl $SCORING_URI -H "Authorization: Bearer $ENDPOINT_KEY" -H "azureml-model-deployment:
green"`); an MLflow model's input is under `input_data`: the columns as pandas' split orientation, `{"input_data":
{"columns", "index", "data"}}`, or, for a model whose signature takes a tensor, `{"input_data": [[...]]}`
(how-to-deploy-mlflow-models, "Input structure"); the answer is a JSON list of predictions (how-to-deploy-mlflow-
models-online-endpoints; MLflow 2's `{"predictions": [...]}` is accepted as well).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..config.model import DeployTarget
from ..errors import NotFound
from ..registry.base import Registry
from . import verify as smoke
from .base import DeployRequest, DeploySession

DEPLOYMENT_HEADER = "azureml-model-deployment"
MLMODEL = "model/MLmodel"  # where the pipeline uploads the model's MLmodel in the run (deploy/mlflow_serve.py)
Scoring = Callable[[], tuple[str, str]]  # () -> (the endpoint's scoring URI, the bearer credential for it)


def payload(columns: Sequence[str], rows: Sequence[Sequence[Any]], tensor: bool) -> bytes:
    if tensor:
        return json.dumps({"input_data": [list(row) for row in rows]}).encode()
    return json.dumps({"input_data": {"columns": list(columns), "index": list(range(len(rows))),
                                      "data": [list(row) for row in rows]}}).encode()


class Scorer:
    """One batch posted to `deployment` alone (the header routes it past the endpoint's traffic)."""

    def __init__(self, uri: str, credential: str, deployment: str, tensor: bool) -> None:
        self.uri, self.credential, self.deployment, self.tensor = uri, credential, deployment, tensor

    def __call__(self, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[Any]:
        headers = {"Authorization": f"Bearer {self.credential}", DEPLOYMENT_HEADER: self.deployment}
        return smoke.post_json(self.uri, payload(columns, rows, self.tensor), headers, len(rows),
                               secret=self.credential)


def verify_deployment(target: DeployTarget, deployment: str, request: DeployRequest, session: DeploySession,
                      scoring: Scoring) -> smoke.Evidence | None:
    """The evidence of `deployment` on the evaluation rows; None (a warning) without verify.rows; VerificationFailed
    when it disagrees with the recorded predictions or is too slow."""
    registry = session.registry
    run_id = registry.get_model_version(request.model_name, request.version).run_id if \
        registry is not None and target.verify.rows else ""
    with tempfile.TemporaryDirectory(prefix="mlops-bot-verify-") as tmp:
        recorded, rows = smoke.evaluation(target, session, run_id, Path(tmp))
        if recorded is None or rows is None:
            return None  # no verify.rows: warned
        tensor = takes_tensor(registry, run_id, Path(tmp)) if registry is not None else False
    uri, credential = scoring()
    evidence = smoke.compare(rows, recorded, target.verify, Scorer(uri, credential, deployment, tensor))
    if not evidence.passed:
        raise smoke.VerificationFailed(request.version, evidence)
    return evidence


def takes_tensor(registry: Registry, run_id: str, workdir: Path) -> bool:
    """The version's MLmodel (from its run) declares a tensor signature; False when the run holds none."""
    try:
        found = registry.download_artifacts(run_id, MLMODEL, workdir / "mlmodel")
    except NotFound:
        return False
    return smoke.tensor_signature(found.parent)
