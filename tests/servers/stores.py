"""Real artifact stores on 127.0.0.1, each with an `mlflow server --no-serve-artifacts` in front: moto (S3),
Azurite (Azure Blob, npm, installed by scripts/install-ci-tools), gcp-storage-emulator (GCS) and a plain shared
directory (file://). Also a fault proxy that answers 503 (and delays) for a seeded share of the requests to an
emulator, so the SDKs' own retries are exercised.

Each emulator runs in its own process group (new session), logs to a file, is waited for until it answers, and
is stopped at exit as well. Used by tests/plugins/stores.py; also runnable by hand:
`python -m tests.servers.stores s3|azure|gcs|file DIR` prints the setup and serves until interrupted.
"""

from __future__ import annotations

import atexit
import contextlib
import http.client
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tests.servers.mlflow_server import MlflowServer, ServerProcess, free_port
from tests.servers.mlflow_server import start as start_mlflow

ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT = 60.0
BUCKET = "mlflow-artifacts"
NODE = ROOT / ".tools" / "node" / "node_modules" / ".bin" / "node"
AZURITE_BLOB = ROOT / ".tools" / "npm" / "node_modules" / ".bin" / "azurite-blob"
# Azurite's well-known development account (public, documented by Microsoft; not a secret).
AZURE_ACCOUNT = "devstoreaccount1"
AZURE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
S3_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
          "AWS_EC2_METADATA_DISABLED": "true"}


@dataclass
class Emulator(ServerProcess):
    """A store emulator subprocess; `url` is its endpoint."""

    name: str
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    stopped: bool = False


def _spawn(name: str, cmd: Sequence[str], root: Path, url: str, ready: Callable[[str], bool]) -> Emulator:
    root.mkdir(parents=True, exist_ok=True)
    log_path = root / f"{name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(list(cmd), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   cwd=root, start_new_session=True)
    emulator = Emulator(name, url, process, log_path)
    atexit.register(emulator.stop)
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not ready(url):
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}:\n{emulator.log_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} not answering after {STARTUP_TIMEOUT:.0f} s:\n{emulator.log_tail()}")
            time.sleep(0.2)
    except BaseException:
        emulator.stop()
        raise
    return emulator


def _answers(path: str, ok: Callable[[int], bool] = lambda status: status < 500) -> Callable[[str], bool]:
    def ready(url: str) -> bool:
        try:
            with urllib.request.urlopen(url + path, timeout=2) as answer:
                return ok(answer.status)
        except urllib.error.HTTPError as error:  # an HTTP answer: the server is up
            return ok(error.code)
        except (urllib.error.URLError, OSError):
            return False
    return ready


def start_moto(root: Path) -> Emulator:
    port = free_port()
    cmd = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    return _spawn("moto", cmd, root, f"http://127.0.0.1:{port}", _answers("/moto-api/data.json"))


def azurite_command() -> list[str]:
    """node (the project's Node 22 when installed, else the system's) running Azurite's blob service."""
    if not AZURITE_BLOB.exists():
        raise RuntimeError(f"Azurite is not installed at {AZURITE_BLOB}; run `bash scripts/install-ci-tools` "
                           "(it installs azurite@3 from npm).")
    node = str(NODE) if os.access(NODE, os.X_OK) else shutil.which("node")
    if node is None:
        raise RuntimeError("node is missing; run `bash scripts/install-ci-tools` (it installs Node 22 from npm).")
    return [node, str(AZURITE_BLOB.resolve())]


def start_azurite(root: Path) -> Emulator:
    port = free_port()
    data = root / "azurite-data"
    data.mkdir(parents=True, exist_ok=True)
    cmd = [*azurite_command(), "--blobHost", "127.0.0.1", "--blobPort", str(port), "--location", str(data),
           "--skipApiVersionCheck", "--loose", "--disableTelemetry"]
    return _spawn("azurite", cmd, root, f"http://127.0.0.1:{port}/{AZURE_ACCOUNT}", _answers("?comp=list"))


def start_gcs(root: Path) -> Emulator:
    port = free_port()
    executable = Path(sys.executable).with_name("gcp-storage-emulator")
    cmd = [str(executable), "start", "--host", "127.0.0.1", "--port", str(port), "--in-memory"]
    return _spawn("gcs", cmd, root, f"http://127.0.0.1:{port}", _answers("/storage/v1/b", lambda s: s == 200))


def azure_connection_string(blob_url: str) -> str:
    return (f"DefaultEndpointsProtocol=http;AccountName={AZURE_ACCOUNT};AccountKey={AZURE_KEY};"
            f"BlobEndpoint={blob_url};")


def create_container(kind: str, env: dict[str, str], name: str = BUCKET) -> None:
    """The bucket (S3, GCS) or container (Azure) the artifact root names, made with the store's own SDK."""
    if kind == "s3":
        s3_client(env).create_bucket(Bucket=name)
    elif kind == "azure":
        from azure.storage.blob import BlobServiceClient

        BlobServiceClient.from_connection_string(env["AZURE_STORAGE_CONNECTION_STRING"]).create_container(name)
    elif kind == "gcs":
        gcs_client(env).create_bucket(name)


def s3_client(env: dict[str, str]) -> Any:
    import boto3  # type: ignore[import-untyped]

    return boto3.client("s3", endpoint_url=env["MLFLOW_S3_ENDPOINT_URL"], region_name=env["AWS_DEFAULT_REGION"],
                        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])


def gcs_client(env: dict[str, str]) -> Any:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage  # type: ignore[import-untyped]

    return storage.Client(project="mlops-bot-test", credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
                          client_options={"api_endpoint": env["STORAGE_EMULATOR_HOST"]})


@dataclass
class StoreSetup:
    """An mlflow server that does not proxy artifacts, and the store its default artifact root names. `env`: what
    a bot process needs to reach the store (besides MLFLOW_TRACKING_URI = tracking_uri)."""

    name: str
    kind: str  # s3, azure, gcs, file
    tracking_uri: str
    artifact_root: str
    env: dict[str, str]
    mlflow: MlflowServer
    emulator: Emulator | None = None
    container: str = BUCKET
    directory: Path | None = None  # the shared directory of a file:// root
    owner: bool = True  # False for a view of another setup's servers (with_env): stopping it stops nothing

    def stop(self) -> None:
        if not self.owner:
            return
        self.mlflow.stop()
        if self.emulator is not None:
            self.emulator.stop()

    def with_env(self, name: str, **env: str) -> StoreSetup:
        """The same servers, reached with other variables (e.g. through a fault proxy)."""
        return StoreSetup(name, self.kind, self.tracking_uri, self.artifact_root, {**self.env, **env},
                          self.mlflow, self.emulator, self.container, self.directory, owner=False)

    def list_objects(self) -> list[str]:
        """Every object name in the bucket, container or directory, read with the store's own SDK (not mlflow),
        straight from the emulator."""
        if self.kind == "s3":
            pages = s3_client(self.direct_env()).get_paginator("list_objects_v2").paginate(Bucket=self.container)
            return sorted(o["Key"] for page in pages for o in page.get("Contents", []))
        if self.kind == "azure":
            from azure.storage.blob import ContainerClient

            client = ContainerClient.from_connection_string(
                self.direct_env()["AZURE_STORAGE_CONNECTION_STRING"], self.container)
            return sorted(b.name for b in client.list_blobs())
        if self.kind == "gcs":
            return sorted(b.name for b in gcs_client(self.direct_env()).list_blobs(self.container))
        assert self.directory is not None
        return sorted(p.relative_to(self.directory).as_posix() for p in self.directory.rglob("*") if p.is_file())

    def read_object(self, name: str) -> bytes:
        if self.kind == "s3":
            return bytes(s3_client(self.direct_env()).get_object(Bucket=self.container, Key=name)["Body"].read())
        if self.kind == "azure":
            from azure.storage.blob import BlobClient

            return BlobClient.from_connection_string(self.direct_env()["AZURE_STORAGE_CONNECTION_STRING"],
                                                     self.container, name).download_blob().readall()
        if self.kind == "gcs":
            return bytes(gcs_client(self.direct_env()).bucket(self.container).blob(name).download_as_bytes())
        assert self.directory is not None
        return (self.directory / name).read_bytes()

    def direct_env(self) -> dict[str, str]:
        """`env` with the emulator's own endpoint (not a proxy's)."""
        return self.env if self.emulator is None else {**self.env, **endpoint_env(self.kind, self.emulator.url)}


@contextlib.contextmanager
def _environ(extra: dict[str, str]) -> Iterator[None]:
    """`extra` in os.environ while the mlflow server starts (server_env() copies os.environ): the server lists a
    run's artifacts itself when a client asks it over REST."""
    saved = {k: os.environ.get(k) for k in extra}
    os.environ.update(extra)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _with_mlflow(name: str, kind: str, root: Path, artifact_root: str, env: dict[str, str],
                 emulator: Emulator | None) -> StoreSetup:
    try:
        with _environ(env):
            server = start_mlflow(root / "mlflow",
                                  artifacts=["--no-serve-artifacts", "--default-artifact-root", artifact_root])
    except BaseException:
        if emulator is not None:
            emulator.stop()
        raise
    return StoreSetup(name, kind, server.uri, artifact_root, env, server, emulator)


def _emulated(kind: str, root: Path, start: Callable[[Path], Emulator],
              describe: Callable[[str], tuple[str, dict[str, str]]]) -> StoreSetup:
    emulator = start(root)
    try:
        artifact_root, env = describe(emulator.url)
        create_container(kind, env)
    except BaseException:
        emulator.stop()
        raise
    return _with_mlflow(kind, kind, root, artifact_root, env, emulator)


def start_s3(root: Path) -> StoreSetup:
    return _emulated("s3", root, start_moto,
                     lambda url: (f"s3://{BUCKET}/", {**S3_ENV, "MLFLOW_S3_ENDPOINT_URL": url}))


def start_azure(root: Path) -> StoreSetup:
    return _emulated("azure", root, start_azurite, lambda url: (
        f"wasbs://{BUCKET}@{AZURE_ACCOUNT}.blob.core.windows.net/",
        {"AZURE_STORAGE_CONNECTION_STRING": azure_connection_string(url)}))


def start_gcs_setup(root: Path) -> StoreSetup:
    # google-cloud-storage reads STORAGE_EMULATOR_HOST: it then talks to that endpoint with anonymous credentials
    # and no project, which is what MLflow's GCSArtifactRepository's plain `storage.Client()` gets.
    return _emulated("gcs", root, start_gcs, lambda url: (f"gs://{BUCKET}/", {"STORAGE_EMULATOR_HOST": url}))


def start_file(root: Path) -> StoreSetup:
    shared = root / "shared"
    shared.mkdir(parents=True, exist_ok=True)
    setup = _with_mlflow("file", "file", root, shared.as_uri(), {}, None)
    setup.directory = shared
    return setup


STARTERS: dict[str, Callable[[Path], StoreSetup]] = {
    "s3": start_s3, "azure": start_azure, "gcs": start_gcs_setup, "file": start_file}


# --- the fault proxy -------------------------------------------------------------------------------------------

_HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization", "te",
               "trailer", "upgrade", "expect"}
_FAULT_BODY = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
               b"<Message>Please reduce your request rate (injected by the test fault proxy).</Message></Error>")


@dataclass
class FaultPlan:
    """A seeded share of requests answered 503 without reaching the store, and a share delayed; at most
    `max_faults` faults in all and `max_per_request` for one method and URL, so an SDK that retries (3 attempts
    or more) always gets through."""

    fault_share: float = 0.2
    delay_share: float = 0.2
    delay_s: float = 0.3
    max_faults: int = 10
    max_per_request: int = 2
    seed: int = 14


class FaultProxy:
    """A threaded HTTP/1.1 reverse proxy on 127.0.0.1 in front of `upstream` (http://host:port)."""

    def __init__(self, upstream: str, plan: FaultPlan) -> None:
        parts = urlsplit(upstream)
        self.upstream_host, self.upstream_port = parts.hostname or "127.0.0.1", parts.port or 80
        self.plan = plan
        self.random = random.Random(plan.seed)
        self.lock = threading.Lock()
        self.requests = self.faulted = self.delayed = 0
        self.faults: list[str] = []  # "METHOD path" of each faulted request
        self.per_request: dict[str, int] = {}
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _ProxyHandler)
        self.server.daemon_threads = True
        self.server.proxy = self  # type: ignore[attr-defined]
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1},
                                       name="fault-proxy", daemon=True)
        self.stopped = False

    def start(self) -> FaultProxy:
        self.thread.start()
        atexit.register(self.stop)
        return self

    def stop(self) -> None:
        if self.stopped:
            return
        self.stopped = True
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)

    def decide(self, method: str, path: str) -> tuple[bool, bool]:
        """(fault, delay) for the next request, from the seeded sequence."""
        key = f"{method} {path}"
        with self.lock:
            self.requests += 1
            fault_roll, delay_roll = self.random.random(), self.random.random()
            fault = (fault_roll < self.plan.fault_share and self.faulted < self.plan.max_faults
                     and self.per_request.get(key, 0) < self.plan.max_per_request)
            delay = delay_roll < self.plan.delay_share
            if fault:
                self.faulted += 1
                self.per_request[key] = self.per_request.get(key, 0) + 1
                self.faults.append(key)
            self.delayed += delay
        return fault, delay


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 60

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _body(self) -> bytes:
        """The request body as it came (a chunked body is passed on still chunked)."""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            raw = bytearray()
            while True:
                line = self.rfile.readline(65537)
                raw += line
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while (trailer := self.rfile.readline(65537)) not in (b"\r\n", b"\n", b""):
                        raw += trailer
                    raw += b"\r\n"
                    return bytes(raw)
                raw += self.rfile.read(size + 2)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self) -> None:
        proxy: FaultProxy = self.server.proxy  # type: ignore[attr-defined]
        body = self._body()
        fault, delay = proxy.decide(self.command, self.path)
        if delay:
            time.sleep(proxy.plan.delay_s)
        if fault:
            self.send_response_only(503, "Service Unavailable")
            self.send_header("Content-Type", "application/xml")
            self.send_header("Retry-After", "0")
            self.send_header("Content-Length", str(len(_FAULT_BODY)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(_FAULT_BODY)
            return
        self._forward(proxy, body)

    def _forward(self, proxy: FaultProxy, body: bytes) -> None:
        upstream = http.client.HTTPConnection(proxy.upstream_host, proxy.upstream_port, timeout=60)
        try:
            upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for name, value in self.headers.items():
                if name.lower() not in _HOP_BY_HOP:
                    upstream.putheader(name, value)
            upstream.endheaders(body or None)
            answer = upstream.getresponse()
            data = answer.read()
        finally:
            upstream.close()
        self.send_response_only(answer.status, answer.reason)
        for name, value in answer.getheaders():
            lowered = name.lower()
            if lowered in _HOP_BY_HOP or lowered == "transfer-encoding":
                continue
            if lowered == "content-length" and self.command != "HEAD":
                continue
            self.send_header(name, value)
        if self.command != "HEAD":
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = _handle


def endpoint_env(kind: str, url: str) -> dict[str, str]:
    """The variable that points the store's SDK at `url` (an emulator, or a proxy in front of it)."""
    if kind == "s3":
        return {"MLFLOW_S3_ENDPOINT_URL": url}
    if kind == "gcs":
        return {"STORAGE_EMULATOR_HOST": url}
    if kind == "azure":
        return {"AZURE_STORAGE_CONNECTION_STRING": azure_connection_string(url)}
    return {}


def behind_faults(setup: StoreSetup, plan: FaultPlan) -> tuple[StoreSetup, FaultProxy]:
    """`setup` reached through a fault proxy in front of its emulator; stop the proxy when done. (Azure's SDK
    waits 15 s before its first retry: each fault costs that much there.)"""
    assert setup.emulator is not None, f"{setup.name} has no emulator to put a proxy in front of"
    proxy = FaultProxy(setup.emulator.url, plan).start()
    path = urlsplit(setup.emulator.url).path  # Azurite's account, e.g. /devstoreaccount1
    return setup.with_env(f"{setup.name}-faults", **endpoint_env(setup.kind, proxy.url + path)), proxy


if __name__ == "__main__":
    started = STARTERS[sys.argv[1]](Path(sys.argv[2]).resolve())
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # stop the servers on SIGTERM as on Ctrl-C
    print(started.tracking_uri, started.artifact_root, started.env, flush=True)
    try:
        started.mlflow.process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        started.stop()
