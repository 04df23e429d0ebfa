"""What a tracking server can do, learned from how it answers (one harmless request per capability, made
lazily and once): what MlflowModels emulates where the server lacks it."""

from __future__ import annotations

import uuid
from typing import Any

from ...errors import InvalidParameter, NotFound
from ..base import Capabilities
from .errors import EndpointMissing, TransientError
from .http import MlflowHttp


class Probes:
    """Mixed into MlflowModels, which sets these in its __init__ (None: not learned yet)."""

    _http: MlflowHttp
    _aliases_native: bool | None
    _search_native: bool | None
    _tags_native: bool | None
    _filters_native: bool | None
    _artifacts: bool

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(self._native_aliases(), self._native_search(), self._artifacts, self._native_tags(),
                            self._filters_native is not False)

    def _native_aliases(self) -> bool:
        """Aliases are native only where the server can SET one: GitLab answers GET registered-models/alias (it
        looks the alias up as a version) but has no POST. The probe sets an alias on a model that does not
        exist, which changes nothing: MLflow says RESOURCE_DOES_NOT_EXIST, a server without the route answers
        404/405 with no MLflow error code."""
        if self._aliases_native is None:
            probe = {"name": f"mlops-bot-probe-{uuid.uuid4().hex[:8]}", "alias": "probe", "version": "1"}
            native = self._endpoint_exists("registered-models/alias", probe, "POST")
            if native is None:  # 501: a server that does not say; what GET answers decides, as before
                read = {"name": probe["name"], "alias": "probe"}
                native = bool(self._endpoint_exists("registered-models/alias", read))
            self._aliases_native = native
        return self._aliases_native

    def _native_tags(self) -> bool:
        """Version tags are native only where model-versions/set-tag exists (probed on a model that does not
        exist); elsewhere the bot's records live in the version's description (capabilities.py)."""
        if self._tags_native is None:
            probe = {"name": f"mlops-bot-probe-{uuid.uuid4().hex[:8]}", "version": "1", "key": "probe", "value": "x"}
            self._tags_native = self._endpoint_exists("model-versions/set-tag", probe, "POST") is not False
        return self._tags_native

    def _native_search(self) -> bool:
        if self._search_native is None:
            probe = {"filter": f"name='mlops-bot-probe-{uuid.uuid4().hex[:8]}'", "max_results": 1}
            self._search_native = bool(self._endpoint_exists("model-versions/search", probe))
        return self._search_native

    def _endpoint_exists(self, endpoint: str, params: dict[str, Any], method: str = "GET") -> bool | None:
        """One probe: a missing endpoint answers 404/405 without an MLflow error code; None for a 501 (a bare
        HTTP server that implements no such method)."""
        def once() -> None:
            try:
                self._http.json(method, endpoint, params=params if method == "GET" else None,
                                body=None if method == "GET" else params, retry=False)
            except TransientError as exc:
                if exc.status == 501:  # "not implemented" (a bare HTTP server's answer to an unknown method)
                    raise EndpointMissing(exc.service, exc.status, exc.url, exc.detail) from None
                raise

        try:
            self._http.retrying(once)
        except EndpointMissing as exc:
            return None if exc.status == 501 else False
        except (NotFound, InvalidParameter):
            pass  # the endpoint answered in MLflow's own terms
        return True

