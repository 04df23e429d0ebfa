"""A local stand-in for Azure Resource Manager's Machine Learning online-endpoint operations, on 127.0.0.1, threaded,
in memory, answering only the routes the `azureml_endpoint` target uses; each endpoint's scoringUri and keys are the
data plane in azureml_scoring.py. Sources (each route cites the one it follows):

- [mfe] Azure/azure-rest-api-specs, specification/machinelearningservices/resource-manager/
  Microsoft.MachineLearningServices/stable/2024-04-01/mfe.json: the paths, operationIds, status codes, headers and
  x-ms-long-running-operation options of OnlineEndpoints_Get / _CreateOrUpdate (PUT: 200, or 201 with
  Azure-AsyncOperation; final-state-via original-uri) / _Update (PATCH, body PartialMinimalTrackedResourceWithIdentity:
  tags and identity only), OnlineDeployments_List / _Get / _CreateOrUpdate (as the endpoint's PUT) / _Delete (200, 204,
  or 202 with Location and Retry-After; final-state-via location); definition OnlineEndpoint.traffic "Percentage of
  traffic from endpoint to divert to each deployment. Traffic values need to sum to 100."; deployment name pattern
  `^[a-zA-Z0-9][a-zA-Z0-9\\-_]{0,254}$`.
- [types] common-types/resource-management/v3/types.json ErrorResponse: `{"error": {"code", "message", "target",
  "details", "additionalInfo"}}`; a missing deployment quoted in Azure-Samples/contoso-chat#139: 404 UserError
  "Deployment <d> not found in endpoint <e>, workspace <w>".
- [arm-async] ARM's async operation protocol (Azure/azure-resource-manager-rpc, v1.0/async-api-reference.md): the
  Azure-AsyncOperation resource, always read with 200: {"id", "name", "status": <RP value>|Succeeded|Failed|Canceled,
  "error": {"code", "message"}}; a DELETE's Location answers 202 while the operation runs, then 200 or 204, and the
  resource disappears; provisioningState moves to a non-terminal state ("Updating", "Deleting") meanwhile.
- [patch] the spec's PATCH body has no `properties`; a real workspace answers 400 "Could not find member 'properties'
  on object of type 'PartialMinimalTrackedResourceWithIdentity'" (quoted in public code moving traffic by PUT).

Assumed where nothing is published (say so when a real workspace disagrees): the status routes' shape (`/subscriptions/
<s>/providers/Microsoft.MachineLearningServices/locations/<loc>/mfeOperationsStatus|mfeOperationResults/<id>`, as Azure
ML's SDK logs show them); the error codes and texts of a bad traffic map, of a deployment deleted while it takes
traffic (refused 400, the rule the rollout relies on), of a model asset that does not exist (the operation ends
Failed); ARM's 401 and api-version texts; a deployment name of at most 32 characters (Azure ML's naming docs).
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import Any

from tests.servers import azureml_scoring as scoring
from tests.servers.fakehttp import Answer, FakeServer, Refusal, Seen

SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
WORKSPACE = (f"/subscriptions/{SUBSCRIPTION}/resourceGroups/standin-rg/providers/Microsoft.MachineLearningServices/"
             "workspaces/standin-ws")
LOCATION = "eastus"
API_VERSIONS = ("2024-04-01",)
_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9\-_]{0,254}$")  # [mfe] deploymentName / endpointName pattern
_ENDPOINT = re.compile(rf"^{re.escape(WORKSPACE)}/onlineEndpoints/(?P<e>[^/]+)(?:(?P<d>/deployments(?:/(?P<n>[^/]+))?)|"
                       r"/(?P<k>listKeys|token))?$", re.IGNORECASE)
_STATUS = re.compile(rf"^/subscriptions/{SUBSCRIPTION}/providers/Microsoft\.MachineLearningServices/locations/"
                     rf"{LOCATION}/(?P<kind>mfeOperationsStatus|mfeOperationResults)/(?P<id>[^/]+)$", re.IGNORECASE)
READ_ONLY = ("provisioningState", "scoringUri", "swaggerUri")


def arm_error(status: int, code: str, message: str) -> Refusal:
    """[types] ARM's error envelope."""
    return Refusal(status, {"error": {"code": code, "message": message, "details": [], "additionalInfo": []}})


class AzureEndpointsServer(FakeServer):
    """One workspace: `token` is the bearer token it accepts; `models` the model asset ids that exist (each
    the MLflow Model scoring loads for one) and its keys in `plane`; `retry_after` the Retry-After of every
    operation answer; `traffic_log` each traffic map as it took effect."""

    serialize = True
    crash_message = "stand-in error"

    def __init__(self) -> None:
        super().__init__()
        self.token = "eyJ0eXAi.arm-standin.c2VjcmV0LXRva2Vu"
        self.retry_after = "0"
        self.models: set[str] = set()
        self.endpoints: dict[str, dict[str, Any]] = {}
        self.deployments: dict[tuple[str, str], dict[str, Any]] = {}
        self.operations: dict[str, dict[str, Any]] = {}
        self.traffic_log: list[dict[str, int]] = []
        self.plane = scoring.DataPlane()
        self._ids = itertools.count(1)

    # test setup
    def add_model(self, name: str, version: str, model_dir: Path | None = None) -> str:
        asset = f"{WORKSPACE}/models/{name}/versions/{version}"
        self.models.add(asset.lower())
        if model_dir is not None:
            self.plane.model_dirs[asset.lower()] = model_dir
        return asset

    def add_endpoint(self, name: str, auth_mode: str = "Key") -> None:
        self.plane.keys[name] = scoring.credentials(name)
        self.endpoints[name] = {
            "id": f"{WORKSPACE}/onlineEndpoints/{name}", "name": name, "location": LOCATION,
            "type": "Microsoft.MachineLearningServices/workspaces/onlineEndpoints", "tags": {},
            "identity": {"type": "SystemAssigned"}, "kind": "Managed",
            "properties": {"authMode": auth_mode, "provisioningState": "Succeeded", "traffic": {},
                           "scoringUri": f"{self.origin}/score/{name}", "swaggerUri": f"{self.origin}/swagger/{name}"}}

    def traffic(self, endpoint: str) -> dict[str, int]:
        return dict(self.endpoints[endpoint]["properties"]["traffic"])

    # the request pipeline
    def handle(self, seen: Seen) -> Answer:
        if scoring.SCORE_PATH.match(seen.path) and seen.method == "POST":  # the data plane: the endpoint's own key
            seen.operation = "Score"
            return self.take_fault("Score") or scoring.score(self, seen)
        operation, route = self._route(seen)
        seen.operation = operation
        if seen.headers.get("authorization") != f"Bearer {self.token}":
            missing = "authorization" not in seen.headers
            raise arm_error(401, "AuthenticationFailed" if missing else "InvalidAuthenticationToken",
                            "Authentication failed. The 'Authorization' header is missing." if missing else
                            "The access token is invalid.")  # assumed texts
        version = (seen.query.get("api-version") or [""])[0]
        if operation.startswith("Online") and not version:
            raise arm_error(400, "MissingApiVersionParameter",
                            "The api-version query parameter (?api-version=) is required for all requests.")
        if operation.startswith("Online") and version not in API_VERSIONS:
            raise arm_error(400, "InvalidApiVersionParameter", f"The api-version '{version}' is invalid. The "
                            f"supported versions are '{', '.join(API_VERSIONS)}'.")
        handler: Any = getattr(self, operation.lower())
        answer: Answer = self.take_fault(operation) or handler(seen, *route)
        return answer

    def _route(self, seen: Seen) -> tuple[str, tuple[str, ...]]:
        found = _ENDPOINT.match(seen.path)
        if found and found["k"] and seen.method == "POST":
            return "OnlineEndpoints_" + ("ListKeys" if found["k"] == "listKeys" else "GetToken"), (found["e"],)
        if found and found["n"] and seen.method in ("GET", "PUT", "DELETE"):
            verb = {"GET": "Get", "PUT": "CreateOrUpdate", "DELETE": "Delete"}[seen.method]
            return f"OnlineDeployments_{verb}", (found["e"], found["n"])
        if found and found["d"] and not found["n"] and seen.method == "GET":
            return "OnlineDeployments_List", (found["e"],)
        if found and not found["d"] and not found["k"] and seen.method in ("GET", "PUT", "PATCH"):
            verb = {"GET": "Get", "PUT": "CreateOrUpdate", "PATCH": "Update"}[seen.method]
            return f"OnlineEndpoints_{verb}", (found["e"],)
        status = _STATUS.match(seen.path)
        if status and seen.method == "GET":
            return ("Operation_Status" if status["kind"].lower() == "mfeoperationsstatus" else "Operation_Result",
                    (status["id"],))
        raise arm_error(404, "NotFound", f"No route for {seen.method} {seen.path}.")  # assumed

    def _endpoint(self, name: str) -> dict[str, Any]:
        if name not in self.endpoints:
            raise arm_error(404, "UserError", f"Endpoint {name} not found in workspace standin-ws")  # [types] shape
        return self.endpoints[name]

    def _deployment(self, endpoint: str, name: str) -> dict[str, Any]:
        self._endpoint(endpoint)
        if (endpoint, name) not in self.deployments:
            raise arm_error(404, "UserError", f"Deployment {name} not found in endpoint {endpoint}, workspace "
                            "standin-ws")  # [types] Azure-Samples/contoso-chat#139
        return self.deployments[(endpoint, name)]

    def _operation(self, apply: Any, error: dict[str, str] | None = None) -> str:
        number = f"op-{next(self._ids)}"
        self.operations[number] = {"polls": 0, "apply": apply, "error": error, "done": False}
        return number

    def _status_url(self, kind: str, number: str) -> str:
        return (f"{self.origin}/subscriptions/{SUBSCRIPTION}/providers/Microsoft.MachineLearningServices/locations/"
                f"{LOCATION}/{kind}/{number}?api-version={API_VERSIONS[0]}")

    # [mfe] OnlineEndpoints_*
    def onlineendpoints_get(self, seen: Seen, endpoint: str) -> Answer:
        return Answer(200, self._endpoint(endpoint))

    def onlineendpoints_update(self, seen: Seen, endpoint: str) -> Answer:
        self._endpoint(endpoint)
        body = seen.body if isinstance(seen.body, dict) else {}
        unknown = sorted(set(body) - {"tags", "identity"})
        if unknown:  # [patch]
            raise arm_error(400, "UserError", f"Could not find member '{unknown[0]}' on object of type "
                            "'PartialMinimalTrackedResourceWithIdentity'")
        self.endpoints[endpoint].update(body)
        return Answer(200, self.endpoints[endpoint])

    def onlineendpoints_createorupdate(self, seen: Seen, endpoint: str) -> Answer:
        body = seen.body if isinstance(seen.body, dict) else {}
        properties = body.get("properties") if isinstance(body.get("properties"), dict) else None
        if properties is None or not body.get("location") or not properties.get("authMode"):
            raise arm_error(400, "BadRequest", "location, properties and properties.authMode are required.")
        traffic = properties.get("traffic") or {}
        self._check_traffic(endpoint, traffic)
        created = endpoint not in self.endpoints
        if created:
            self.add_endpoint(endpoint)
        current = self.endpoints[endpoint]
        current["properties"]["provisioningState"] = "Updating"

        def apply() -> None:
            kept = {k: v for k, v in current["properties"].items() if k in READ_ONLY}
            fresh = {k: v for k, v in properties.items() if k not in READ_ONLY}
            current["properties"] = {**fresh, **kept, "traffic": dict(traffic), "provisioningState": "Succeeded"}
            current["tags"] = body.get("tags") or {}
            self.traffic_log.append(dict(traffic))

        number = self._operation(apply)
        return Answer(201 if created else 200, current, {"Azure-AsyncOperation":
                                                         self._status_url("mfeOperationsStatus", number),
                                                         "Retry-After": self.retry_after})

    def _check_traffic(self, endpoint: str, traffic: Any) -> None:
        if not isinstance(traffic, dict) or not all(isinstance(v, int) and 0 <= v <= 100 for v in traffic.values()):
            raise arm_error(400, "BadArgument", "Traffic values must be integers between 0 and 100.")
        unknown = [name for name in traffic if (endpoint, name) not in self.deployments]
        if unknown:
            raise arm_error(400, "BadArgument", f"Traffic names deployment '{unknown[0]}', which does not exist in "
                            f"endpoint {endpoint}.")
        if sum(traffic.values()) not in (0, 100):  # [mfe] "Traffic values need to sum to 100" (or no traffic)
            raise arm_error(400, "BadArgument", f"The sum of traffic values must be 0 or 100, not "
                            f"{sum(traffic.values())}.")

    def onlineendpoints_listkeys(self, seen: Seen, endpoint: str) -> Answer:  # and _GetToken: azureml_scoring
        return scoring.credential(self.plane, self._endpoint(endpoint)["name"], seen.path.endswith("/listKeys"))

    onlineendpoints_gettoken = onlineendpoints_listkeys

    # [mfe] OnlineDeployments_*
    def onlinedeployments_list(self, seen: Seen, endpoint: str) -> Answer:
        self._endpoint(endpoint)
        return Answer(200, {"value": [d for (e, _), d in self.deployments.items() if e == endpoint]})

    def onlinedeployments_get(self, seen: Seen, endpoint: str, name: str) -> Answer:
        return Answer(200, self._deployment(endpoint, name))

    def onlinedeployments_createorupdate(self, seen: Seen, endpoint: str, name: str) -> Answer:
        self._endpoint(endpoint)
        body = seen.body if isinstance(seen.body, dict) else {}
        properties = body.get("properties") if isinstance(body.get("properties"), dict) else {}
        if not _NAME.match(name) or len(name) > 32:
            raise arm_error(400, "BadArgument", f"Deployment name '{name}' is invalid: 1-32 letters, digits, '-' "
                            "or '_', starting with a letter or digit.")
        if not body.get("location") or properties.get("endpointComputeType") != "Managed":
            raise arm_error(400, "BadRequest", "location and properties.endpointComputeType are required.")
        model = str(properties.get("model") or "")
        created = (endpoint, name) not in self.deployments
        doc = {"id": f"{WORKSPACE}/onlineEndpoints/{endpoint}/deployments/{name}", "name": name,
               "type": "Microsoft.MachineLearningServices/workspaces/onlineEndpoints/deployments",
               "location": body["location"], "sku": body.get("sku"), "tags": body.get("tags") or {},
               "properties": {**properties, "provisioningState": "Creating" if created else "Updating"}}
        self.deployments[(endpoint, name)] = doc
        missing = model.lower() not in self.models
        error = {"code": "ModelNotFound", "message": f"Model asset {model} was not found."} if missing else None

        def apply() -> None:
            doc["properties"]["provisioningState"] = "Failed" if missing else "Succeeded"

        number = self._operation(apply, error)
        return Answer(201 if created else 200, doc, {"Azure-AsyncOperation":
                                                     self._status_url("mfeOperationsStatus", number),
                                                     "Retry-After": self.retry_after})

    def onlinedeployments_delete(self, seen: Seen, endpoint: str, name: str) -> Answer:
        if (endpoint, name) not in self.deployments:
            self._endpoint(endpoint)
            return Answer(204)  # [mfe] 204 No Content
        share = self.traffic(endpoint).get(name, 0)
        if share > 0:  # assumed text; the rule: a deployment taking traffic is not deleted
            raise arm_error(400, "BadArgument", f"Deployment {name} has {share}% of endpoint {endpoint}'s traffic "
                            "and cannot be deleted; set its traffic to 0 first.")
        self.deployments[(endpoint, name)]["properties"]["provisioningState"] = "Deleting"

        def apply() -> None:
            self.deployments.pop((endpoint, name), None)
            self.endpoints[endpoint]["properties"]["traffic"].pop(name, None)

        number = self._operation(apply)
        return Answer(202, None, {"Location": self._status_url("mfeOperationResults", number),
                                  "Retry-After": self.retry_after})

    # [arm-async] the operation routes: InProgress once, then the outcome
    def _advance(self, number: str) -> dict[str, Any]:
        operation = self.operations.get(number)
        if operation is None:
            raise arm_error(404, "NotFound", f"Operation {number} not found.")
        if operation["polls"] == 0:
            operation["polls"] = 1
        elif not operation["done"]:
            operation["done"] = True
            operation["apply"]()
        return operation

    def operation_status(self, seen: Seen, number: str) -> Answer:
        operation = self._advance(number)
        if not operation["done"]:
            return Answer(200, {"id": seen.path, "name": number, "status": "InProgress"}, {"Retry-After":
                                                                                         self.retry_after})
        if operation["error"]:
            return Answer(200, {"id": seen.path, "name": number, "status": "Failed", "error": operation["error"]})
        return Answer(200, {"id": seen.path, "name": number, "status": "Succeeded"})

    def operation_result(self, seen: Seen, number: str) -> Answer:
        operation = self._advance(number)
        if not operation["done"]:
            return Answer(202, None, {"Location": self._status_url("mfeOperationResults", number),
                                      "Retry-After": self.retry_after})
        return Answer(200)


def start() -> AzureEndpointsServer:
    return AzureEndpointsServer().start()
