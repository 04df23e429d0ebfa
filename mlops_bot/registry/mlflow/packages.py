"""Run artifacts in GitLab's ml_model packages: the http(s) artifact URI GitLab gives a run
(`<gitlab>/api/v4/projects/<id>/packages/ml_models/candidate:<iid>/files/`, or `.../<version id>/files/` and the
legacy `.../packages/generic/...`).

GitLab takes one file per PUT, with a name of `[A-Za-z0-9._-+ ]` only, and has no listing of a run's files
(its docs: `log_artifact` takes no artifact_path and no directories). So each file's path below the run's
artifact root is encoded reversibly into one file name (`name_of`: `/` and every other character GitLab refuses
become `+XX`, a `+` becomes `++`; a plain name such as `model.pkl` stays as it is), and a manifest file
(`mlops-bot.manifest.json`, rewritten after each upload; GitLab serves the newest file of a name) lists them.
What the manifest says is read through the same guard as any listing (registry/mlflow/artifacts.py).

Credentials go only to the tracking server's own origin: an artifact URI on another host is refused.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

import httpx

from ...errors import NotFound, RemoteError
from ...support.files import download_into
from ...support.urls import redact
from .errors import SERVICE, error_from_response, error_from_transport, hostile
from .http import MlflowHttp, TooLarge

T = TypeVar("T")
MANIFEST = "mlops-bot.manifest.json"
_PLAIN = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-_ ")
_HEX = "0123456789ABCDEF"


def name_of(path: str) -> str:
    """A '/'-separated path as one file name GitLab accepts; `path_of` reverses it."""
    out = []
    for byte in path.encode():
        if byte == ord("+"):
            out.append("++")
        elif byte in _PLAIN:
            out.append(chr(byte))
        else:
            out.append(f"+{byte:02X}")
    name = "".join(out)
    return name if name not in (".", "..") else name.replace(".", "+2E")


def path_of(name: str) -> str | None:
    """The path `name_of` encoded; None when `name` is not such an encoding."""
    out = bytearray()
    index = 0
    while index < len(name):
        char = name[index]
        if char != "+":
            out += char.encode()
            index += 1
        elif name[index + 1:index + 2] == "+":
            out += b"+"
            index += 2
        elif len(name) >= index + 3 and all(c in _HEX for c in name[index + 1:index + 3]):
            out.append(int(name[index + 1:index + 3], 16))
            index += 3
        else:
            return None
    try:
        return out.decode()
    except UnicodeDecodeError:
        return None


def is_package_uri(uri: str) -> bool:
    try:
        parts = urlsplit(uri)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and ("/packages/ml_models/" in parts.path
                                                  or "/packages/generic/" in parts.path)


class PackageStore:
    store_name = "GitLab packages"

    def __init__(self, http: MlflowHttp, root_uri: str, listing_bytes: int) -> None:
        self._http = http
        self._root = root_uri if root_uri.endswith("/") else root_uri + "/"
        self._listing_bytes = listing_bytes
        mine, theirs = urlsplit(http.base), urlsplit(self._root)
        if (mine.scheme, mine.netloc) != (theirs.scheme, theirs.netloc):
            raise RemoteError(SERVICE, 200, redact(self._root),
                              f"the run's artifact URI is on {theirs.netloc}, not on the tracking server "
                              f"{mine.netloc}; mlops-bot sends its token to the tracking server only. Check that "
                              "the tracking URI is the GitLab project you expect")

    def _url(self, relative: str) -> str:
        return self._root + quote(name_of(relative), safe="")

    def where(self, parts: tuple[str, ...]) -> str:
        return redact(self._root + MANIFEST) + (f" ({'/'.join(parts)})" if parts else "")

    def prefixes(self, parts: tuple[str, ...]) -> tuple[str, ...]:
        return ()

    def _manifest(self) -> dict[str, int]:
        with tempfile.TemporaryDirectory(prefix="mlops-bot-manifest-") as tmp:
            target = Path(tmp) / "manifest.json"
            try:
                self._get(MANIFEST, target, self._listing_bytes)
            except NotFound:
                return {}
            try:
                doc = json.loads(target.read_text())
            except (ValueError, UnicodeDecodeError):
                doc = None
        files = doc.get("files") if isinstance(doc, dict) else None
        if not isinstance(files, dict):

            raise hostile(self.where(()), "the manifest is not a JSON object with 'files'")
        return {str(k): v for k, v in files.items()}

    def listing(self, parts: tuple[str, ...]) -> list[Any]:
        """The entries of the directory `parts`, from the manifest."""
        prefix = "/".join(parts) + "/" if parts else ""
        entries: dict[str, dict[str, Any]] = {}
        for path, size in self._manifest().items():
            if not path.startswith(prefix) or path == prefix:
                continue
            head, _, rest = path[len(prefix):].partition("/")
            if rest:
                entries.setdefault(head, {"path": head, "is_dir": True})
            else:
                entries[head] = {"path": head, "is_dir": False, "file_size": size}
        return list(entries.values())

    def fetch(self, parts: tuple[str, ...], target: Path, max_bytes: int) -> int:
        return self._get("/".join(parts), target, max_bytes, encode=True)

    def put(self, local: Path, parts: tuple[str, ...]) -> None:
        uploaded: dict[str, int] = {}
        if local.is_file():
            uploaded["/".join((*parts, local.name))] = local.stat().st_size
        else:
            for folder, _dirs, files in os.walk(local):
                relative = Path(folder).relative_to(local).parts
                for file_name in sorted(files):
                    uploaded["/".join((*parts, *relative, file_name))] = (Path(folder) / file_name).stat().st_size
        for path in uploaded:
            source = local if local.is_file() else local.joinpath(*path.split("/")[len(parts):])
            self._put(self._url(path), source.read_bytes())
        # the files first, then the manifest that names them: a reader never meets a name without its file
        manifest = {**self._manifest(), **uploaded}
        self._put(self._root + MANIFEST, json.dumps({"files": manifest}, sort_keys=True).encode())

    # requests, with the tracking server's client (its token) and retries

    def _call(self, make: Callable[[], httpx.Response], url: str) -> httpx.Response:
        def once() -> httpx.Response:
            try:
                response = make()
            except httpx.TransportError as exc:
                raise error_from_transport(exc, redact(url)) from None
            if response.is_success:
                return response
            if response.status_code == 404:
                raise NotFound(self.store_name, 404, redact(url), "no such artifact")
            raise error_from_response(response, redact(url))

        return self._http.retrying(once)

    def _put(self, url: str, content: bytes) -> None:
        self._call(lambda: self._http.client.put(url, content=content,
                                                 headers={"Content-Type": "application/octet-stream"}), url)

    def _get(self, relative: str, target: Path, max_bytes: int, encode: bool = False) -> int:
        url = self._url(relative) if encode else self._root + relative
        with download_into(target) as temp:
            response = self._call(lambda: self._http.client.get(url), url)
            if len(response.content) > max_bytes:
                raise TooLarge(response.status_code, redact(url), max_bytes)
            temp.write_bytes(response.content)
            return len(response.content)
