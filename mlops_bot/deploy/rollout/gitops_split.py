"""The traffic driver of a `gitops` target whose manifest is a KServe InferenceService: each step is a commit that
sets the new model and `spec.predictor.canaryTrafficPercent`; KServe sends that share to the new revision and the
rest to the last revision rolled out at 100%. Rolling back sets the percent to 0 (all traffic to that previous
revision), finishing sets 100 (KServe's "promote the canary"). Shadow traffic has no KServe field (refused by the
config check). The commits go through the gitops target itself (deploy/gitops.py): same repository, branch,
pull-request mode, retries and "already deployed" when the manifest holds the values."""

from __future__ import annotations

from dataclasses import replace

from ...config.model import DeployTarget
from ...errors import UsageError
from ...registry.tags import deploy_tag
from ..base import DeployRequest, DeploySession
from ..gitops import deploy as commit_manifest


class Driver:
    def __init__(self, target: DeployTarget, request: DeployRequest, session: DeploySession) -> None:
        self.target, self.request, self.session = target, request, session

    def stable(self) -> str | None:
        """The version deployed to this target last before this one (KServe's previous revision serves it)."""
        registry = self.session.registry
        if registry is None:
            return None
        status, at = deploy_tag(self.target.name, "status"), deploy_tag(self.target.name, "at")
        done = [v for v in registry.search_model_versions(self.request.model_name)
                if v.version != self.request.version and v.tags.get(status) == "succeeded" and v.tags.get(at)]
        return max(done, key=lambda v: v.tags[at]).version if done else None

    def prepare(self) -> dict[str, str]:
        return {}  # the first step's commit is the hand-off

    def split(self, percent: int) -> str:
        return self._commit(min(percent, 100))

    def shadow(self, share: int) -> str:
        if share <= 0:
            return "no shadow traffic"
        raise UsageError(f"deploy target '{self.target.name}': a KServe InferenceService cannot mirror requests; "
                         "remove rollout.shadow from the target.")

    def restore(self) -> str:
        return self._commit(0)

    def finish(self) -> str:
        return self._commit(100)

    def _commit(self, percent: int) -> str:
        step = replace(self.target, canary_percent=percent, rollout=None)
        done = commit_manifest(step, self.request, self.session)
        return f"canaryTrafficPercent {percent}: {done.detail}"
