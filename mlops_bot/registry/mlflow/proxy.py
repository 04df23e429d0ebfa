"""Run artifacts through the tracking server's artifact proxy (`mlflow server --serve-artifacts`).

An artifact URI `mlflow-artifacts:/<exp>/<run>/artifacts` (sometimes with a host) names files under
`/api/2.0/mlflow-artifacts/artifacts/<that path>/...`; a listing is `GET .../artifacts?path=<that path>`.
Uploads are PUTs, idempotent by nature. What the answers say is checked by registry/mlflow/artifacts.py.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ...errors import NotFound
from .errors import SERVICE, EndpointMissing
from .http import ARTIFACTS_API, MlflowHttp


class ProxyStore:
    store_name = SERVICE

    def __init__(self, http: MlflowHttp, root: str, listing_bytes: int) -> None:
        self._http = http
        self._root = root  # the artifact URI's path, without slashes around it
        self._listing_bytes = listing_bytes

    def _path(self, parts: tuple[str, ...]) -> str:
        return "/".join((self._root, *parts))

    def _url_path(self, parts: tuple[str, ...]) -> str:
        return "/".join((ARTIFACTS_API, self._root, *(quote(p, safe="") for p in parts)))

    def where(self, parts: tuple[str, ...]) -> str:
        return f"{self._http.display}{ARTIFACTS_API}?path={quote(self._path(parts), safe='/')}"

    def prefixes(self, parts: tuple[str, ...]) -> tuple[str, ...]:
        # Servers answer with the path from their artifact root or from the directory listed.
        return (self._path(parts), "/".join(parts)) if parts else (self._path(parts),)

    def listing(self, parts: tuple[str, ...]) -> list[Any]:
        doc = self._http.json_at(ARTIFACTS_API, params={"path": self._path(parts)}, max_bytes=self._listing_bytes)
        files: list[Any] = doc.get("files") or []  # artifacts.py refuses anything but a list
        return files

    def fetch(self, parts: tuple[str, ...], target: Path, max_bytes: int) -> int:
        path = self._url_path(parts)
        try:
            return self._http.download_file(path, target, max_bytes)
        except EndpointMissing:
            raise
        except NotFound:
            raise NotFound(SERVICE, 404, self._http.display + path, "no such artifact") from None

    def put(self, local: Path, parts: tuple[str, ...]) -> None:
        if local.is_file():
            self._http.upload_file(self._url_path((*parts, local.name)), local)
            return
        for folder, _dirs, files in os.walk(local):
            relative = Path(folder).relative_to(local).parts
            for file_name in sorted(files):
                self._http.upload_file(self._url_path((*parts, *relative, file_name)), Path(folder) / file_name)
