"""Run artifacts wherever the tracking server keeps them, read with one guard.

A run's artifact URI says where: `mlflow-artifacts:/...` is the tracking server's proxy (`--serve-artifacts`,
registry/mlflow/proxy.py); any other scheme (`s3://`, `wasbs://`, `gs://`, `file://`, `dbfs:/`, `azureml://`)
is read and written with MLflow's own artifact repository for it (registry/mlflow/stores.py).

Downloads trust nothing a listing says, whoever answers it: every name must be a plain file name in the
directory listed, every local path is checked (support.paths.confined) before anything is written, and a
listing is bounded in depth, entries and bytes (`Limits`). A malformed or hostile answer is a RemoteError
naming where it came from.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from ...errors import NotFound, RemoteError, UsageError
from ...support.paths import UnsafePath, confined, name_problem, shown
from ..validation import artifact_parts
from .errors import HOSTILE_WHAT_TO_DO, SERVICE, EndpointMissing, hostile
from .http import MlflowHttp, TooLarge
from .packages import PackageStore, is_package_uri
from .proxy import ProxyStore
from .stores import PROXY_SCHEME, RepositoryStore, scheme_of

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


class Store(Protocol):
    """One artifact root: a run's artifact URI or an experiment's location. `parts` are below the root."""

    store_name: str

    def where(self, parts: tuple[str, ...]) -> str:
        """Where the directory `parts` is listed, for messages (credentials redacted)."""
        ...

    def listing(self, parts: tuple[str, ...]) -> list[Any]:
        """The raw entries of the directory `parts` ({path, is_dir, file_size}); [] when it is none."""
        ...

    def prefixes(self, parts: tuple[str, ...]) -> tuple[str, ...]:
        """What an entry's path in the listing of `parts` may start with (the directory, however named)."""
        ...

    def fetch(self, parts: tuple[str, ...], target: Path, max_bytes: int) -> int:
        """The file `parts` into `target` (complete or not at all); NotFound when there is none."""
        ...

    def put(self, local: Path, parts: tuple[str, ...]) -> None:
        """A file, or a directory's tree, uploaded into the directory `parts`."""
        ...


WRITE_CHECK = "mlops-bot-write-check.txt"  # written at an experiment's location before a run trains


class RunArtifacts:
    def __init__(self, http: MlflowHttp, artifact_uri_of: Callable[[str], str], limits: Limits = Limits()) -> None:
        self._http = http
        self._artifact_uri_of = artifact_uri_of
        self._limits = limits
        self._stores: dict[str, Store] = {}  # run_id -> its store; a run's artifact URI never changes

    def store_for(self, uri: str, run_id: str = "") -> Store:
        """The store behind an artifact URI (a run's, when `run_id` says whose, for messages)."""
        if is_package_uri(uri):  # GitLab's ml_model (or generic) packages: registry/mlflow/packages.py
            return PackageStore(self._http, uri, self._limits.listing_bytes)
        if scheme_of(uri) != PROXY_SCHEME:
            return RepositoryStore(uri)
        try:
            path = urlsplit(uri).path
        except ValueError:  # e.g. an unclosed '[' where a host would be
            path = ""
        if not path.strip("/"):
            whose = f"run {run_id} has" if run_id else "the experiment has"
            raise RemoteError(SERVICE, 200, f"{self._http.display}/api/2.0/mlflow/runs/get?run_id={run_id}",
                              f"{whose} the artifact URI {shown(uri)}, which names no directory; {HOSTILE_WHAT_TO_DO}")
        return ProxyStore(self._http, path.strip("/"), self._limits.listing_bytes)

    def _store(self, run_id: str) -> Store:
        if run_id not in self._stores:
            self._stores[run_id] = self.store_for(self._artifact_uri_of(run_id), run_id)
        return self._stores[run_id]

    def check_writable(self, location: str) -> None:
        """Writes a small note at `location` (an experiment's artifact location): what cannot be written there
        fails now, with the store's own error, instead of after the training. A location that is no URI (GitLab
        answers 'not_implemented') says nothing: each run's own artifact URI is used."""
        if not scheme_of(location) and not location.startswith("/"):
            return
        store = self.store_for(location)
        with tempfile.TemporaryDirectory(prefix="mlops-bot-check-") as tmp:
            note = Path(tmp) / WRITE_CHECK
            note.write_text("mlops-bot writes this file before a run trains, to learn that it can upload the "
                            "run's artifacts here. Safe to delete.\n")
            store.put(note, ())

    def upload(self, run_id: str, local: Path, artifact_path: str = "") -> None:
        if not local.exists():
            raise UsageError(f"cannot upload {local}: no such file or directory.")
        self._store(run_id).put(local, artifact_parts(artifact_path))

    def download(self, run_id: str, artifact_path: str, dest: Path) -> Path:
        parts = artifact_parts(artifact_path)
        store = self._store(run_id)
        listing = self._list(store, parts)
        if listing is None:  # not a directory: a single file, or nothing at all
            self._get(store, run_id, parts, _place(dest, parts, store.where(parts)), None)
            return dest.joinpath(*parts)
        target = _place(dest, parts, store.where(parts))
        planned = [(item, _place(target, item.parts, item.where)) for item in listing]  # all checked, then written
        target.mkdir(parents=True, exist_ok=True)
        received = 0
        for item, file in planned:
            received += self._get(store, run_id, (*parts, *item.parts), file, item.size, received)
        return target

    def list_files(self, run_id: str, artifact_path: str = "") -> list[str]:
        """Every file below the directory `artifact_path` (relative to it); [] when it is no directory."""
        return ["/".join(item.parts) for item in self._list(self._store(run_id), artifact_parts(artifact_path)) or ()]

    def _list(self, store: Store, parts: tuple[str, ...]) -> list[Listed] | None:
        """Every file under `parts` (relative to it), or None when `parts` is no directory."""
        walk = _Walk(self._limits)
        pending: list[tuple[str, ...]] = [()]
        listed_any = False
        while pending:
            sub = pending.pop()
            where = store.where((*parts, *sub))
            entries = store.listing((*parts, *sub))
            if not isinstance(entries, list):
                raise hostile(where, f"its 'files' is {shown(entries)}, not a list")
            listed_any = listed_any or bool(entries) or bool(sub)
            prefixes = store.prefixes((*parts, *sub))
            for entry in entries:
                directory = walk.take(sub, entry, prefixes, where)
                if directory is not None:
                    pending.append(directory)
        return sorted(walk.files) if listed_any else None

    def _get(self, store: Store, run_id: str, parts: tuple[str, ...], target: Path, size: int | None,
             received: int = 0) -> int:
        """Downloads one file within what is left of the byte bound (and its declared size); returns its size."""
        left = self._limits.bytes - received
        try:
            return store.fetch(parts, target, left if size is None else min(size, left))
        except EndpointMissing:
            raise
        except NotFound as exc:
            raise NotFound(exc.service, exc.status, exc.url,
                           f"run {run_id} has no artifact {'/'.join(parts) or '(root)'}") from None
        except TooLarge as exc:
            why = (f"sent more than the {size:,} bytes its listing declared" if size is not None and size <= left
                   else f"sent more than {self._limits.bytes:,} bytes in all, the most one download takes")
            raise RemoteError(SERVICE, exc.status, exc.url, f"{why}; the partial file was removed; "
                                                             f"{HOSTILE_WHAT_TO_DO}") from None


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
