"""The data plane of the Azure ML stand-in (tests/servers/azureml_endpoints.py): an endpoint's credentials and its
scoring route, which answers with the predictions of the MLflow Model the chosen deployment serves (loaded with
mlflow.pyfunc from the directory a test registered for the model asset). Sources:

- [mfe] mfe.json 2024-04-01: OnlineEndpoints_ListKeys (POST .../onlineEndpoints/{name}/listKeys, 200
  EndpointAuthKeys {"primaryKey", "secondaryKey"}), OnlineEndpoints_GetToken (POST .../token, 200 EndpointAuthToken
  {"accessToken", "expiryTimeUtc", "refreshAfterTimeUtc", "tokenType"}), OnlineEndpoint.authMode AMLToken | Key |
  AADToken, scoringUri read-only.
- [rollout] learn.microsoft.com how-to-safely-rollout-online-endpoints, "Test the new deployment" (and
  Azure/azureml-examples cli/deploy-safe-rollout-online-endpoints.sh): `curl $SCORING_URI -H "Authorization: Bearer
  $ENDPOINT_KEY" -H "azureml-model-deployment: green"` reaches that deployment whatever its traffic; without the
  header the endpoint's traffic decides.
- [mlflow] learn.microsoft.com how-to-deploy-mlflow-models, "Input structure": the input is under `input_data`, pandas'
  split orientation `{"columns", "index", "data"}` or a tensor `[[...]]`; how-to-deploy-mlflow-models-online-endpoints:
  the answer is a JSON list of predictions (`[11633.1, 8522.1]`).

Assumed (not published): the texts and codes of a refused key (401), an unknown deployment (404) and an endpoint
with no traffic to route to (the message as Azure ML's own clients quote it).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.servers.fakehttp import Answer, Refusal, Seen

if TYPE_CHECKING:
    from tests.servers.azureml_endpoints import AzureEndpointsServer

DEPLOYMENT_HEADER = "azureml-model-deployment"
SCORE_PATH = re.compile(r"^/score/(?P<e>[^/]+)$")  # each endpoint's scoringUri on the stand-in


@dataclass
class DataPlane:
    keys: dict[str, dict[str, str]] = field(default_factory=dict)  # endpoint -> its credentials
    model_dirs: dict[str, Path] = field(default_factory=dict)  # model asset id (lower case) -> MLflow Model directory
    loaded: dict[str, Any] = field(default_factory=dict)  # directory -> its pyfunc model


def credentials(endpoint: str) -> dict[str, str]:
    """[mfe] EndpointAuthKeys of an endpoint, and an AML token, all distinct per endpoint."""
    return {"primaryKey": f"pk-{endpoint}-Zm9vYmFy0123", "secondaryKey": f"sk-{endpoint}-YmF6cXV40456",
            "accessToken": f"aml-{endpoint}-dG9rZW4789"}


def credential(plane: DataPlane, endpoint: str, keys: bool) -> Answer:
    """[mfe] OnlineEndpoints_ListKeys (`keys`) or OnlineEndpoints_GetToken."""
    found = plane.keys[endpoint]
    if keys:
        return Answer(200, {"primaryKey": found["primaryKey"], "secondaryKey": found["secondaryKey"]})
    return Answer(200, {"accessToken": found["accessToken"], "tokenType": "Bearer", "expiryTimeUtc": 0,
                        "refreshAfterTimeUtc": 0})


def score(server: AzureEndpointsServer, seen: Seen) -> Answer:
    """[rollout] the chosen deployment's predictions for [mlflow] `input_data`."""
    found = SCORE_PATH.match(seen.path)
    endpoint = found["e"] if found else ""
    current = server.endpoints.get(endpoint)
    if current is None:
        raise Refusal(404, {"message": f"Endpoint {endpoint} not found."})  # assumed
    keys = server.plane.keys[endpoint]
    accepted = [f"Bearer {keys['accessToken']}"] if current["properties"]["authMode"] == "AMLToken" else \
        [f"Bearer {keys['primaryKey']}", f"Bearer {keys['secondaryKey']}"]
    if seen.headers.get("authorization") not in accepted:
        raise Refusal(401, {"message": "Invalid authentication credentials."})  # assumed
    name = seen.headers.get(DEPLOYMENT_HEADER) or _by_traffic(server.traffic(endpoint))
    deployment = server.deployments.get((endpoint, name))
    if deployment is None or deployment["properties"].get("provisioningState") != "Succeeded":
        raise Refusal(404, {"message": f"Deployment {name} not found in endpoint {endpoint}."})  # assumed
    model = server.plane.model_dirs.get(str(deployment["properties"].get("model") or "").lower())
    if model is None:
        raise Refusal(500, {"message": "the stand-in has no MLflow Model for this asset; register one"})
    body = seen.body.get("input_data") if isinstance(seen.body, dict) else None
    if body is None:
        raise Refusal(400, {"message": "The request body must hold input_data."})  # [mlflow]
    return Answer(200, _predict(server.plane, model, body))


def _by_traffic(traffic: dict[str, int]) -> str:
    weighted = [(name, share) for name, share in traffic.items() if share > 0]
    if not weighted:  # assumed text, as Azure ML's clients quote it
        raise Refusal(424, {"message": "No valid deployments to route to. Please check that the endpoint has at "
                                       "least one deployment with positive weight values or use a deployment "
                                       "specific header to route."})
    names, shares = zip(*weighted, strict=True)
    return str(random.choices(names, shares)[0])


def _predict(plane: DataPlane, model_dir: Path, body: Any) -> list[Any]:
    import mlflow.pyfunc
    import numpy as np
    import pandas as pd

    key = str(model_dir)
    if key not in plane.loaded:
        plane.loaded[key] = mlflow.pyfunc.load_model(key)
    if isinstance(body, dict):
        data: Any = pd.DataFrame(body["data"], columns=body["columns"], index=body.get("index"))
    else:
        data = np.asarray(body, dtype=float)
    predicted = plane.loaded[key].predict(data)
    return list(np.asarray(predicted).tolist())
