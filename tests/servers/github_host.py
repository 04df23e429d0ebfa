"""What the GitHub stand-in's route mixins (github_governance, github_runs) use of their host, GitHubServer: typed
here once, provided there."""

from __future__ import annotations

from typing import Any

from tests.servers.fakehttp import Answer, Seen


class Host:
    repository: str
    api_url: str
    origin: str
    lock: Any

    def _user(self, login: str) -> dict[str, Any]:
        raise NotImplementedError

    def _links(self, seen: Seen, page: int, last: int) -> dict[str, str]:
        raise NotImplementedError

    def _stamp(self) -> str:
        raise NotImplementedError

    def _not_found(self) -> Answer:
        raise NotImplementedError
