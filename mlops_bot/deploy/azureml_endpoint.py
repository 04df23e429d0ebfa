"""The `azureml_endpoint` target: the version as a deployment of an Azure ML managed online endpoint that already
exists, through Azure Resource Manager (azureml_arm.py).

One deployment per version, named `<model>-v<version>` (letters, digits and '-', starting with a letter, at most 32
characters; the model part is cut to fit), serving the model asset `<workspace>/models/<name>/versions/<version>` (an
Azure ML workspace's MLflow registry keeps its versions as model assets). Without `rollout:`, `deploy` creates it with
no traffic and waits, verifies it on the evaluation rows (deploy/azureml_score.py: requests to it alone, with the
endpoint's key), gives it all the endpoint's traffic, then deletes this model's deployments left with none (best
effort). A deployment that fails verification is deleted before any traffic reaches it, and the evidence is recorded
on the version (exit 3). With `rollout:`, deploy/rollout/azureml_split.py does the same in its prepare() and then
moves the traffic step by step through the same `Endpoint`.

Traffic is changed by reading the endpoint and putting it back with its new `properties.traffic`
(OnlineEndpoints_CreateOrUpdate): the spec's PATCH (OnlineEndpoints_Update) takes only tags and identity, and an
endpoint rebuilt from scratch would put an empty traffic map.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from ..config.model import DeployTarget
from ..errors import BotError, UsageError
from ..support.urls import redact
from . import verify as smoke
from .azureml_arm import SCORING_SCOPE, SCORING_TOKEN_ENV, Arm, OperationFailed, access_token, compact
from .azureml_score import verify_deployment
from .base import DeployRefused, DeployRequest, DeployResult, DeploySession

NAME_LIMIT = 32
READ_ONLY = ("provisioningState", "scoringUri", "swaggerUri")  # the spec's readOnly properties of an endpoint
WORKSPACE = re.compile(r"^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.MachineLearningServices/"
                       r"workspaces/[^/]+$", re.IGNORECASE)
_VERSION_OF = re.compile(r"/models/(?P<name>[^/]+)/versions/(?P<version>[^/]+)$")


def deployment_name(model: str, version: str) -> str:
    """`<model>-v<version>` within Azure's rules, the same for the same inputs."""
    suffix = "v" + re.sub(r"[^a-z0-9]+", "-", version.lower()).strip("-")
    stem = re.sub(r"[^a-z0-9]+", "-", model.lower()).strip("-")
    stem = re.sub(r"^[^a-z]+", "", stem)[:max(0, NAME_LIMIT - len(suffix) - 1)].rstrip("-")
    return f"{stem}-{suffix}" if stem else suffix[:NAME_LIMIT]


def props(resource: Mapping[str, Any] | None) -> dict[str, Any]:
    """A resource's `properties`, whatever the answer held."""
    found = resource.get("properties") if resource else None
    return found if isinstance(found, dict) else {}


def served(deployment: Mapping[str, Any]) -> tuple[str, str] | None:
    """(model name, version) of the model asset a deployment serves, read from its properties.model."""
    model = str(props(deployment).get("model") or "")
    match = _VERSION_OF.search(model)
    return (match["name"], match["version"]) if match else None


@dataclass
class Endpoint:
    """The target's endpoint and its deployments, through one Arm session."""

    arm: Arm
    target: DeployTarget

    @property
    def path(self) -> str:
        return f"{self.target.workspace}/onlineEndpoints/{self.target.endpoint}"

    def read(self) -> dict[str, Any]:
        found = self.arm.get(self.path)  # OnlineEndpoints_Get
        if found is None:
            raise UsageError(f"deploy target '{self.target.name}': the online endpoint '{self.target.endpoint}' does "
                             f"not exist in workspace {self.target.workspace}; create it first (az ml online-endpoint "
                             "create) or fix endpoint: in ml.yaml.")
        return found

    def traffic(self, endpoint: Mapping[str, Any] | None = None) -> dict[str, int]:
        raw = props(endpoint or self.read()).get("traffic")
        shares = raw.items() if isinstance(raw, dict) else ()
        return {str(name): int(share) for name, share in shares if isinstance(share, int)}

    def set_traffic(self, wanted: Mapping[str, int]) -> bool:
        """Puts the endpoint back with `wanted` as its traffic; False when it had exactly that already."""
        endpoint = self.read()
        if self.traffic(endpoint) == dict(wanted):
            return False
        kept = ("location", "tags", "identity", "kind", "sku")
        body: dict[str, Any] = {key: endpoint[key] for key in kept if key in endpoint}
        properties = {k: v for k, v in props(endpoint).items() if k not in READ_ONLY}
        self.arm.put(self.path, {**body, "properties": {**properties, "traffic": dict(wanted)}})
        return True

    def deployment(self, name: str) -> dict[str, Any] | None:
        return self.arm.get(f"{self.path}/deployments/{name}")  # OnlineDeployments_Get

    def deployments(self) -> list[dict[str, Any]]:
        """Every deployment of the endpoint (OnlineDeployments_List)."""
        return self.arm.items(f"{self.path}/deployments")

    def create(self, name: str, request: DeployRequest) -> dict[str, Any]:
        """Creates (or repairs) the version's deployment and waits; DeployRefused when provisioning fails."""
        existing = self.deployment(name)
        owner = served(existing) if existing else None
        if existing and owner and owner[0] != request.model_name:
            raise UsageError(f"deploy target '{self.target.name}': deployment '{name}' of endpoint "
                             f"'{self.target.endpoint}' serves model '{owner[0]}', not '{request.model_name}'; "
                             "rename one of the models or use another endpoint.")
        ready = props(existing).get("provisioningState") == "Succeeded"
        if existing and ready and owner == (request.model_name, request.version):
            return existing  # provisioned before (a re-run, a resumed rollout): nothing to create
        body = {"location": self.read().get("location"), "sku": {"name": "Default",
                                                                 "capacity": self.target.instance_count},
                "properties": {"endpointComputeType": "Managed", "instanceType": self.target.instance_type,
                               "model": f"{self.target.workspace}/models/{request.model_name}/versions/"
                                        f"{request.version}",
                               "scaleSettings": {"scaleType": "Default"}}}
        try:
            return self.arm.put(f"{self.path}/deployments/{name}", body)  # OnlineDeployments_CreateOrUpdate
        except OperationFailed as failed:
            raise DeployRefused(f"deploy target '{self.target.name}': Azure ML could not provision deployment "
                                f"'{name}' ({failed.detail})", {"provisioning": compact(failed.document)}) from None

    def scoring(self, env: Mapping[str, str]) -> tuple[str, str]:
        """The scoring URI and the bearer credential its authMode asks for: a key (OnlineEndpoints_ListKeys), an
        AML token (OnlineEndpoints_GetToken) or an Entra token for Azure ML (AADToken)."""
        properties = props(self.read())
        uri, mode = str(properties.get("scoringUri") or ""), str(properties.get("authMode") or "Key")
        if not uri:
            raise UsageError(f"deploy target '{self.target.name}': endpoint '{self.target.endpoint}' has no scoring "
                             "URI yet; wait until it is provisioned and run `mlops-bot deploy` again.")
        if mode.lower() == "aadtoken":
            return uri, access_token(env, SCORING_TOKEN_ENV, SCORING_SCOPE)
        operation, field = ("token", "accessToken") if mode.lower() == "amltoken" else ("listKeys", "primaryKey")
        answer = self.arm.json_of(self.arm.call("POST", self.arm.url(f"{self.path}/{operation}")))
        credential = str(answer.get(field) or answer.get("secondaryKey") or "")
        if not credential:
            raise UsageError(f"deploy target '{self.target.name}': Azure ML gave no {field} for endpoint "
                             f"'{self.target.endpoint}' (authMode {mode}); check the endpoint's authentication.")
        return uri, credential

    def discard(self, name: str) -> bool:
        """Deletes a deployment that takes no traffic (its 0 entry dropped first); False when it takes some."""
        traffic = self.traffic()
        if traffic.get(name, 0) > 0:
            return False
        if name in traffic:  # a name in the map must exist: drop it first
            self.set_traffic({k: v for k, v in traffic.items() if k != name})
        self.arm.delete(f"{self.path}/deployments/{name}")  # OnlineDeployments_Delete
        return True

    def retire(self, model: str, keep: str) -> list[str]:
        """Deletes this model's deployments, other than `keep`, that take no traffic; best effort."""
        traffic, gone = self.traffic(), []
        for deployment in self.deployments():
            name, owner = str(deployment.get("name") or ""), served(deployment)
            if not name or name == keep or owner is None or owner[0] != model or traffic.get(name, 0) > 0:
                continue
            try:
                if traffic.get(name) == 0:  # a name in the map must exist: drop it first
                    self.set_traffic({k: v for k, v in self.traffic().items() if k != name})
                    traffic.pop(name)
                self.arm.delete(f"{self.path}/deployments/{name}")  # OnlineDeployments_Delete
                gone.append(name)
            except BotError as exc:
                self.arm.echo(f"mlops-bot: deploy {self.target.name}: deployment '{name}' was left in place: {exc}")
        return gone


def open_arm(target: DeployTarget, session: DeploySession) -> Arm:
    if not target.workspace or not WORKSPACE.match(target.workspace):
        raise UsageError(f"deploy target '{target.name}' (azureml_endpoint): workspace must be the workspace's "
                         "resource id, /subscriptions/<id>/resourceGroups/<group>/providers/"
                         "Microsoft.MachineLearningServices/workspaces/<name>.")
    if not target.endpoint:
        raise UsageError(f"deploy target '{target.name}' (azureml_endpoint) has no endpoint; add endpoint: to it.")
    timeout = target.timeout or 1200.0
    return Arm(target.management_url, access_token(session.env), timeout=timeout, echo=session.echo)


def create_verified(endpoint: Endpoint, name: str, request: DeployRequest,
                    session: DeploySession) -> smoke.Evidence | None:
    """The version's deployment, provisioned and verified before any traffic; a deployment that fails verification
    (or cannot be verified) is deleted, unless it takes traffic already (a re-run), and the failure raised."""
    endpoint.create(name, request)
    try:
        return verify_deployment(endpoint.target, name, request, session, lambda: endpoint.scoring(session.env))
    except BotError:
        try:
            kept = not endpoint.discard(name)
        except BotError as exc:
            session.echo(f"mlops-bot: deploy {endpoint.target.name}: deployment '{name}' was left in place: {exc}")
        else:
            session.echo(f"mlops-bot: deploy {endpoint.target.name}: deployment '{name}' " +
                         ("kept: it takes traffic already" if kept else "deleted: it took no traffic"))
        raise


def verified_tags(evidence: smoke.Evidence | None) -> dict[str, str]:
    return evidence.as_tags() if evidence else {"verify": '{"skipped": true}'}


def deploy(target: DeployTarget, request: DeployRequest, session: DeploySession) -> DeployResult:
    name = deployment_name(request.model_name, request.version)
    with open_arm(target, session) as arm:
        endpoint = Endpoint(arm, target)
        if _live(endpoint, name):
            return _result(target, endpoint, name, "already deployed: ")
        evidence = create_verified(endpoint, name, request, session)
        endpoint.set_traffic({name: 100})
        gone = endpoint.retire(request.model_name, keep=name)
        checked = f"; verified: {evidence.line()}" if evidence else "; not verified (the target has no verify.rows)"
        done = _result(target, endpoint, name, "", gone)
        return replace(done, detail=done.detail + checked, evidence=verified_tags(evidence))


def up_to_date(target: DeployTarget, request: DeployRequest, session: DeploySession) -> str | None:
    """A detail when the version's deployment is provisioned and takes all the endpoint's traffic, else None (also
    when Azure cannot be asked: the deployment that follows reports why)."""
    name = deployment_name(request.model_name, request.version)
    try:
        with open_arm(target, session) as arm:
            endpoint = Endpoint(arm, target)
            return _result(target, endpoint, name, "already deployed: ").detail if _live(endpoint, name) else None
    except BotError:
        return None


def _live(endpoint: Endpoint, name: str) -> bool:
    if endpoint.traffic() != {name: 100}:
        return False
    existing = endpoint.deployment(name)
    return props(existing).get("provisioningState") == "Succeeded"


def _result(target: DeployTarget, endpoint: Endpoint, name: str, prefix: str,
            gone: list[str] | None = None) -> DeployResult:
    scoring = redact(str(props(endpoint.read()).get("scoringUri") or "")) or "no scoring URI yet"
    removed = f"; deleted {', '.join(gone)}" if gone else ""
    return DeployResult(target.name, target.type, "succeeded", f"{prefix}endpoint {target.endpoint}: deployment "
                        f"{name} takes 100% of traffic at {scoring}{removed}")


