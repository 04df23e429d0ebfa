"""The traffic driver of an `azureml_endpoint` target: Azure ML's own blue/green. The new version is a deployment of
the endpoint beside the one that serves (prepare: created with no traffic and verified on the evaluation rows, deleted
again when it fails), each step sets the endpoint's
`properties.traffic` (the new deployment's share, the stable one the rest), rolling back gives the stable deployment
everything and deletes the new one, finishing does the opposite. The stable deployment is read from the endpoint
each time (the one other than the new with the most traffic, a 0 entry included), so any process can continue.
Deployments other than these two keep their share. Mirrored traffic (Azure's `mirrorTraffic`) is not driven here:
the config check refuses rollout.shadow for this type."""

from __future__ import annotations

from ...config.model import DeployTarget
from ...errors import BotError, UsageError
from ..azureml_endpoint import Endpoint, create_verified, deployment_name, open_arm, served, verified_tags
from ..base import DeployRequest, DeploySession


class Driver:
    def __init__(self, target: DeployTarget, request: DeployRequest, session: DeploySession) -> None:
        self.target, self.request, self.session = target, request, session
        self.new = deployment_name(request.model_name, request.version)

    def stable(self) -> str | None:
        with open_arm(self.target, self.session) as arm:
            endpoint = Endpoint(arm, self.target)
            name = _stable(endpoint.traffic(), self.new)
            deployment = endpoint.deployment(name) if name else None
        owner = served(deployment) if deployment else None
        if owner is None or owner[0] != self.request.model_name or owner[1] == self.request.version:
            return None  # nothing of this model serves (another model's version is not ours to restore)
        return owner[1]

    def prepare(self) -> dict[str, str]:
        with open_arm(self.target, self.session) as arm:
            evidence = create_verified(Endpoint(arm, self.target), self.new, self.request, self.session)
        checked = f"verified: {evidence.line()}" if evidence else "not verified (the target has no verify.rows)"
        self.session.echo(f"mlops-bot: deploy {self.target.name}: deployment {self.new} of endpoint "
                          f"{self.target.endpoint} provisioned with no traffic; {checked}")
        return verified_tags(evidence)

    def split(self, percent: int) -> str:
        percent = max(0, min(percent, 100))
        with open_arm(self.target, self.session) as arm:
            endpoint = Endpoint(arm, self.target)
            traffic = endpoint.traffic()
            stable = _stable(traffic, self.new)
            others = {k: v for k, v in traffic.items() if k not in (stable, self.new)}
            if stable is None:
                wanted = {**others, self.new: 100 - sum(others.values())}
            else:
                wanted = {**others, stable: _rest(self.target, others, percent), self.new: percent}
            changed = endpoint.set_traffic(wanted)
        shares = ", ".join(f"{name} {share}%" for name, share in wanted.items())
        return f"endpoint {self.target.endpoint}: {shares}" + ("" if changed else " (already so)")

    def shadow(self, share: int) -> str:
        if share <= 0:
            return "no shadow traffic"
        raise UsageError(f"deploy target '{self.target.name}': the azureml_endpoint rollout does not mirror "
                         "requests; remove rollout.shadow from the target.")

    def restore(self) -> str:
        with open_arm(self.target, self.session) as arm:
            endpoint = Endpoint(arm, self.target)
            traffic = endpoint.traffic()
            stable = _stable(traffic, self.new)
            others = {k: v for k, v in traffic.items() if k not in (stable, self.new)}
            wanted = dict(others) if stable is None else {**others, stable: _rest(self.target, others, 0)}
            endpoint.set_traffic(wanted)
            deleted = arm.delete(f"{endpoint.path}/deployments/{self.new}")
        back = f"all traffic back to {stable}" if stable else "no previous deployment: the endpoint serves nothing"
        return f"endpoint {self.target.endpoint}: {back}; deployment {self.new} " + \
               ("deleted" if deleted else "already gone")

    def finish(self) -> str:
        with open_arm(self.target, self.session) as arm:
            endpoint = Endpoint(arm, self.target)
            traffic = endpoint.traffic()
            stable = _stable(traffic, self.new)
            others = {k: v for k, v in traffic.items() if k not in (stable, self.new)}
            endpoint.set_traffic({**others, self.new: _rest(self.target, others, 0)})
            gone = endpoint.retire(self.request.model_name, keep=self.new)
        return f"endpoint {self.target.endpoint}: {self.new} takes all traffic" + \
               (f"; deleted {', '.join(gone)}" if gone else "")


def _stable(traffic: dict[str, int], new: str) -> str | None:
    """The deployment other than `new` with the most traffic (a 0 entry counts: it served before the last step)."""
    candidates = [(share, name) for name, share in traffic.items() if name != new]
    return max(candidates)[1] if candidates else None


def _rest(target: DeployTarget, others: dict[str, int], taken: int) -> int:
    rest = 100 - taken - sum(others.values())
    if rest < 0:
        raise BotError(f"deploy target '{target.name}': other deployments of endpoint '{target.endpoint}' take "
                       f"{sum(others.values())}% of its traffic, leaving less than {taken}% to split; give them 0% "
                       "and run `mlops-bot deploy` again.")
    return rest
