"""Run artifacts through the tracking server's artifact proxy (`mlflow server --serve-artifacts`).

A run's artifact URI is `mlflow-artifacts:/<exp>/<run>/artifacts` (sometimes with a host); files live under
`/api/2.0/mlflow-artifacts/artifacts/<that path>/...`. Uploads are PUTs, idempotent by nature.

Downloads trust nothing the server says: every name in a listing must be a plain file name in the directory
listed, every local path is checked (support.paths.confined) before anything is written, and a listing is
bounded in depth, entries and bytes (`Limits`). A malformed or hostile answer is a RemoteError naming the server.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from ...errors import NotFound, RemoteError, UsageError
from ...support.paths import UnsafePath, confined, name_problem, shown
from ..validation import artifact_parts
from .errors import SERVICE, EndpointMissing
from .http import ARTIFACTS_API, MlflowHttp, TooLarge

MAX_DEPTH = 32  # directories below the one downloaded: a saved model nests a few levels
MAX_ENTRIES = 10_000  # files and directories in one download: a model has tens, a sharded checkpoint hundreds
MAX_BYTES = 20 * 2**30  # all files of one download: more than a hosted CI runner has disk for
MAX_LISTING_BYTES = 16 * 2**20  # one listing answer: 10,000 entries with long names are about 3 MB


@dataclass(frozen=True)
class Limits:
    """What one download takes from the server at most; a hostile one would send no end of it."""

    depth: int = MAX_DEPTH
    entries: int = MAX_ENTRIES
    bytes: int = MAX_BYTES
    listing_bytes: int = MAX_LISTING_BYTES


@dataclass(frozen=True, order=True)
class Listed:
    """A file a listing named: its parts below the downloaded directory, the size the listing declared (if
    any), and the listing's URL for messages."""

    parts: tuple[str, ...]
    size: int | None = field(compare=False)
    where: str = field(compare=False)


class ProxiedArtifacts:
    def __init__(self, http: MlflowHttp, artifact_uri_of: Callable[[str], str], limits: Limits = Limits()) -> None:
        self._http = http
        self._artifact_uri_of = artifact_uri_of
        self._limits = limits
        self._roots: dict[str, str] = {}  # run_id -> proxy path; a run's artifact URI never changes

    def _root(self, run_id: str) -> str:
        if run_id not in self._roots:
            uri = self._artifact_uri_of(run_id)
            try:
                parts = urlsplit(uri)
            except ValueError:  # e.g. an unclosed '[' where a host would be
                raise RemoteError(SERVICE, 200, f"{self._http.display}/api/2.0/mlflow/runs/get?run_id={run_id}",
                                  f"run {run_id} has the artifact URI {shown(uri)}, which is no URL; "
                                  f"{_WHAT_TO_DO}") from None
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
        listing = self._list(run_id, parts)
        if listing is None:  # not a directory: a single file, or nothing at all
            where = self._http.display + self._url_path(run_id, parts)
            self._get(run_id, parts, _place(dest, parts, where), None)
            return dest.joinpath(*parts)
        target = _place(dest, parts, self._listing_url(run_id, parts))
        planned = [(item, _place(target, item.parts, item.where)) for item in listing]  # all checked, then written
        target.mkdir(parents=True, exist_ok=True)
        received = 0
        for item, file in planned:
            received += self._get(run_id, (*parts, *item.parts), file, item.size, received)
        return target

    def list_files(self, run_id: str, artifact_path: str = "") -> list[str]:
        """Every file below the directory `artifact_path` (relative to it); [] when it is no directory."""
        return ["/".join(item.parts) for item in self._list(run_id, artifact_parts(artifact_path)) or ()]

    def _listing_url(self, run_id: str, parts: tuple[str, ...]) -> str:
        path = "/".join((self._root(run_id), *parts))
        return f"{self._http.display}{ARTIFACTS_API}?path={quote(path, safe='/')}"

    def _list(self, run_id: str, parts: tuple[str, ...]) -> list[Listed] | None:
        """Every file under `parts` (relative to it), or None when `parts` is no directory."""
        walk = _Walk(self._limits)
        pending: list[tuple[str, ...]] = [()]
        listed_any = False
        while pending:
            sub = pending.pop()
            where = self._listing_url(run_id, (*parts, *sub))
            path = "/".join((self._root(run_id), *parts, *sub))
            doc = self._http.json_at(ARTIFACTS_API, params={"path": path}, max_bytes=self._limits.listing_bytes)
            entries = doc.get("files") or []
            if not isinstance(entries, list):
                raise hostile(where, f"its 'files' is {shown(entries)}, not a list")
            listed_any = listed_any or bool(entries) or bool(sub)
            prefixes = (path, "/".join((*parts, *sub))) if parts or sub else (path,)
            for entry in entries:
                directory = walk.take(sub, entry, prefixes, where)
                if directory is not None:
                    pending.append(directory)
        return sorted(walk.files) if listed_any else None

    def _get(self, run_id: str, parts: tuple[str, ...], target: Path, size: int | None, received: int = 0) -> int:
        """Downloads one file within what is left of the byte bound (and its declared size); returns its size."""
        path = self._url_path(run_id, parts)
        left = self._limits.bytes - received
        try:
            return self._http.download_file(path, target, left if size is None else min(size, left))
        except EndpointMissing:
            raise
        except NotFound:
            raise NotFound(SERVICE, 404, self._http.display + path,
                           f"run {run_id} has no artifact {'/'.join(parts) or '(root)'}") from None
        except TooLarge as exc:
            why = (f"sent more than the {size:,} bytes its listing declared" if size is not None and size <= left
                   else f"sent more than {self._limits.bytes:,} bytes in all, the most one download takes")
            raise RemoteError(SERVICE, exc.status, exc.url, f"{why}; the partial file was removed; "
                                                             f"{_WHAT_TO_DO}") from None


_WHAT_TO_DO = ("nothing was written outside the download directory; check that the tracking URI names the MLflow "
               "server you expect and that no proxy in between rewrites its answers")


def hostile(where: str, problem: str) -> RemoteError:
    """The error for an artifact listing that cannot be followed safely (it answered 200, but not sensibly)."""
    return RemoteError(SERVICE, 200, where, f"refusing the artifact listing: {problem}; {_WHAT_TO_DO}")


def _place(root: Path, parts: tuple[str, ...], where: str) -> Path:
    try:
        return confined(root, parts)
    except UnsafePath as exc:
        raise hostile(where, str(exc)) from None


class _Walk:
    """The entries seen so far in one download's listings, checked against the limits as they come."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.seen: set[tuple[str, ...]] = set()
        self.files: list[Listed] = []
        self.declared = 0  # bytes, as the listings declare them

    def take(self, sub: tuple[str, ...], entry: Any, prefixes: tuple[str, ...], where: str) -> tuple[str, ...] | None:
        """Checks one entry of the listing of `sub`: a file joins `files`, a directory's parts are returned (to
        be listed in turn)."""
        item = (*sub, entry_name(entry, prefixes, where))
        if item in self.seen:
            raise hostile(where, f"it names {shown('/'.join(item))} twice")
        self.seen.add(item)
        if len(self.seen) > self.limits.entries:
            raise hostile(where, f"it names more than {self.limits.entries:,} files and directories, the most one "
                                 "download takes")
        is_dir = entry.get("is_dir", False)
        if not isinstance(is_dir, bool):
            raise hostile(where, f"entry {shown('/'.join(item))} has is_dir {shown(is_dir)}, not true or false")
        if not is_dir:
            self.files.append(Listed(item, self._size(entry, item, where), where))
            return None
        if len(item) > self.limits.depth:
            raise hostile(where, f"it nests directories more than {self.limits.depth} deep")
        return item

    def _size(self, entry: dict[str, Any], item: tuple[str, ...], where: str) -> int | None:
        size = entry.get("file_size")
        if size is not None:
            if isinstance(size, str) and size.isdigit():
                size = int(size)  # int64 fields may come as strings in proto JSON
            if not isinstance(size, int) or isinstance(size, bool) or size < 0:
                raise hostile(where, f"entry {shown('/'.join(item))} has file_size {shown(size)}, not a size")
            self.declared += size
            if self.declared > self.limits.bytes:
                raise hostile(where, f"its files come to more than {self.limits.bytes:,} bytes, the most one "
                                     "download takes")
        return size


def entry_name(entry: Any, prefixes: tuple[str, ...], where: str) -> str:
    """The name a listing entry gives: its bare `path`, or `path` below the directory listed (as some servers
    answer). Anything else (no path, `..`, an absolute path, NUL, a trailing '/') is refused."""
    if not isinstance(entry, dict) or "path" not in entry:
        raise hostile(where, f"an entry has no path: {shown(entry)}")
    path = entry["path"]
    if not isinstance(path, str):
        raise hostile(where, f"an entry's path is {shown(path)}, not a string")
    head, separator, name = path.rpartition("/")
    problem = name_problem(name)
    if problem or (separator and head not in prefixes):
        raise hostile(where, f"entry {shown(path)} is not a plain name in the listed directory"
                             + (f" ({problem})" if problem else ""))
    return name
