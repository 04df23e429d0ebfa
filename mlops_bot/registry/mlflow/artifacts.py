"""Run artifacts through the tracking server's artifact proxy (`mlflow server --serve-artifacts`).

A run's artifact URI is `mlflow-artifacts:/<exp>/<run>/artifacts` (sometimes with a host); files live under
`/api/2.0/mlflow-artifacts/artifacts/<that path>/...`. Uploads are PUTs, idempotent by nature.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote, urlsplit

from ...errors import NotFound, UsageError
from ..validation import artifact_parts
from .errors import SERVICE, EndpointMissing
from .http import ARTIFACTS_API, MlflowHttp


class ProxiedArtifacts:
    def __init__(self, http: MlflowHttp, artifact_uri_of: Callable[[str], str]) -> None:
        self._http = http
        self._artifact_uri_of = artifact_uri_of
        self._roots: dict[str, str] = {}  # run_id -> proxy path; a run's artifact URI never changes

    def _root(self, run_id: str) -> str:
        if run_id not in self._roots:
            uri = self._artifact_uri_of(run_id)
            parts = urlsplit(uri)
            if parts.scheme != "mlflow-artifacts":
                raise UsageError(f"{SERVICE}: run {run_id} keeps its artifacts at {uri}, which the tracking "
                                 "server does not proxy; start the server with --serve-artifacts and a "
                                 "default artifact root of mlflow-artifacts:/ (or use the embedded store).")
            self._roots[run_id] = parts.path.strip("/")
        return self._roots[run_id]

    def _url_path(self, run_id: str, parts: tuple[str, ...]) -> str:
        return "/".join((ARTIFACTS_API, self._root(run_id), *(quote(p, safe="") for p in parts)))

    def upload(self, run_id: str, local: Path, artifact_path: str = "") -> None:
        base = artifact_parts(artifact_path)
        if local.is_file():
            self._put(run_id, local, (*base, local.name))
            return
        if not local.is_dir():
            raise UsageError(f"cannot upload {local}: no such file or directory.")
        for folder, _dirs, files in os.walk(local):
            relative = Path(folder).relative_to(local).parts
            for file_name in sorted(files):
                self._put(run_id, Path(folder) / file_name, (*base, *relative, file_name))

    def _put(self, run_id: str, file: Path, parts: tuple[str, ...]) -> None:
        self._http.upload_file(self._url_path(run_id, parts), file)

    def download(self, run_id: str, artifact_path: str, dest: Path) -> Path:
        parts = artifact_parts(artifact_path)
        target = dest.joinpath(*parts)
        listing = self._list(run_id, parts)
        if listing is None:  # not a directory: a single file, or nothing at all
            self._get(run_id, parts, target)
            return target
        target.mkdir(parents=True, exist_ok=True)
        for relative in listing:
            self._get(run_id, (*parts, *relative), target.joinpath(*relative))
        return target

    def _list(self, run_id: str, parts: tuple[str, ...]) -> list[tuple[str, ...]] | None:
        """Every file under `parts` (relative to it), or None when `parts` is no directory."""
        root = "/".join((self._root(run_id), *parts))
        files: list[tuple[str, ...]] = []
        pending: list[tuple[str, ...]] = [()]
        seen_any = False
        while pending:
            sub = pending.pop()
            doc = self._http.json_at(ARTIFACTS_API, params={"path": "/".join((root, *sub))})
            entries = doc.get("files") or ()
            seen_any = seen_any or bool(entries) or bool(sub)
            for entry in entries:
                name = str(entry["path"]).rsplit("/", 1)[-1]
                (pending if entry.get("is_dir") else files).append((*sub, name))
        return sorted(files) if seen_any else None

    def _get(self, run_id: str, parts: tuple[str, ...], target: Path) -> None:
        path = self._url_path(run_id, parts)
        try:
            self._http.download_file(path, target)
        except EndpointMissing:
            raise
        except NotFound:
            raise NotFound(SERVICE, 404, self._http.display + path,
                           f"run {run_id} has no artifact {'/'.join(parts) or '(root)'}") from None
