"""A hostile tracking server (or anything in between) cannot make an artifact download write outside its target
(issue #13, item 1). A small HTTP server on 127.0.0.1 answers the artifact proxy's listing and file routes
with each hostile answer; every test asserts a RemoteError (exit 3) naming the server, that nothing changed
in the sandbox outside the download directory, and that no temp file was left behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from mlops_bot.errors import EXIT_RUNTIME, RemoteError
from mlops_bot.registry.mlflow.artifacts import MAX_DEPTH, MAX_ENTRIES, Limits, RunArtifacts
from mlops_bot.registry.mlflow.client import MlflowRegistry
from mlops_bot.registry.mlflow.http import MlflowHttp, RetryPolicy

FAST = RetryPolicy(total_seconds=0.5, initial_wait=0.01, max_wait=0.05, retry_after_cap=0.1, timeout=5.0)
ROOT = "1/r1/artifacts"  # where run r1 keeps its artifacts on the proxy
LISTINGS = "/api/2.0/mlflow-artifacts/artifacts"
MODEL = "hostile"


@dataclass
class Reply:
    payload: bytes | Iterable[bytes]  # an iterable is sent chunked, for as long as it lasts
    headers: dict[str, str] = field(default_factory=dict)
    status: int = 200


def js(document: Any, status: int = 200) -> Reply:
    return Reply(json.dumps(document).encode(), {"Content-Type": "application/json"}, status)


def files(*entries: dict[str, Any]) -> Reply:
    return js({"files": list(entries)})


def file(path: Any, size: int | None = None) -> dict[str, Any]:
    return {"path": path, "is_dir": False, **({"file_size": size} if size is not None else {})}


def folder(path: str) -> dict[str, Any]:
    return {"path": path, "is_dir": True}


def endless(chunk: bytes = b"x" * 65536) -> Iterator[bytes]:
    """Endless to any reader that honours a bound (256 MiB, so that one that does not still ends)."""
    for _ in range(256 * 2**20 // len(chunk)):
        yield chunk


@dataclass
class Hostile:
    """An MLflow server whose artifact proxy says what the test scripts: `listing(rel)` answers the listing of
    `rel` (the path below run r1's root), `body(rel)` each file. Runs, the champion alias and version search
    answer like MLflow, enough for `compare` to rescore the champion."""

    listing: Callable[[str], Reply]
    body: Callable[[str], Reply] = lambda rel: Reply(b"fine")
    uri: str = ""
    seen: list[str] = field(default_factory=list)  # "list <rel>" / "get <rel>"
    sent: int = 0  # bytes of chunked bodies written before the client stopped reading
    crashes: list[str] = field(default_factory=list)  # a bug in the fake must fail the test, not pass as an error

    def answer(self, target: str) -> Reply:
        url = urlsplit(target)
        query = {k: v[0] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        if url.path == LISTINGS:
            rel = query.get("path", "").removeprefix(ROOT).lstrip("/")
            self.seen.append(f"list {rel}")
            return self.listing(rel) if len(self.seen) < 500 else files()  # the old code listed forever
        if not url.path.startswith("/api/2.0/mlflow/"):  # a file: the client may have resolved a `..` in its URL
            rel = unquote(url.path.removeprefix(LISTINGS + "/")).removeprefix(ROOT).lstrip("/")
            self.seen.append(f"get {rel}")
            return self.body(rel)
        if url.path == "/api/2.0/mlflow/runs/get":
            run_id = query["run_id"]
            info = {"run_id": run_id, "experiment_id": "1", "status": "FINISHED", "start_time": 1,
                    "artifact_uri": f"mlflow-artifacts:/1/{run_id}/artifacts"}
            return js({"run": {"info": info, "data": {"metrics": [{"key": "score", "value": 0.5}]}}})
        if url.path == "/api/2.0/mlflow/registered-models/alias" and query.get("name") == MODEL:
            return js({"model_version": {"name": MODEL, "version": "1", "run_id": "r1", "status": "READY"}})
        if url.path == "/api/2.0/mlflow/model-versions/search":
            return js({})
        return js({"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "no such thing"}, 404)


@pytest.fixture
def hostile() -> Iterator[Callable[..., Hostile]]:
    servers: list[ThreadingHTTPServer] = []
    started: list[Hostile] = []

    def start(listing: Callable[[str], Reply], body: Callable[[str], Reply] | None = None) -> Hostile:
        state = Hostile(listing, body or Hostile.body)

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                try:
                    reply = state.answer(self.path)
                except Exception as exc:
                    state.crashes.append(f"{self.path}: {type(exc).__name__}: {exc}")
                    reply = js({"message": "the fake crashed"}, 500)
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                try:
                    if isinstance(reply.payload, bytes):
                        self.send_header("Content-Length", str(len(reply.payload)))
                        self.end_headers()
                        self.wfile.write(reply.payload)
                        return
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    for chunk in reply.payload:
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                        state.sent += len(chunk)
                    self.wfile.write(b"0\r\n\r\n")
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True  # the client stopped reading: what a bound does

            def log_message(self, format: str, *args: object) -> None:
                pass

        server = Quiet(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        state.uri = f"http://127.0.0.1:{server.server_address[1]}"
        started.append(state)
        return state

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()
    assert [crash for state in started for crash in state.crashes] == []


class Quiet(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client that hung up after a bound: expected
            super().handle_error(request, client_address)


def snapshot(root: Path) -> dict[str, str]:
    """Every entry under `root` (links not followed): its kind and content."""
    found = {}
    for folder_name, dirs, names in os.walk(root):
        for name in dirs + names:
            path = Path(folder_name) / name
            rel = path.relative_to(root).as_posix()
            if path.is_symlink():
                found[rel] = f"link -> {os.readlink(path)}"
            elif path.is_dir():
                found[rel] = "dir"
            else:
                found[rel] = f"file {path.read_bytes()[:100]!r}"
    return found


@dataclass
class Sandbox:
    """A tree with the download directory six levels down and an `outside` directory to aim links at."""

    root: Path
    dest: Path

    def outside(self, before: dict[str, str]) -> dict[str, str]:
        """The entries outside the download directory that differ from `before`."""
        after = snapshot(self.root)
        inside = self.dest.relative_to(self.root).as_posix()
        return {k: v for k, v in set(after.items()) ^ set(before.items()) if not k.startswith(inside)}

    def temp_files(self) -> list[str]:
        return [k for k in snapshot(self.root) if k.endswith(".part")]


@pytest.fixture
def sandbox(tmp_path: Path) -> Sandbox:
    box = Sandbox(tmp_path / "sandbox", tmp_path / "sandbox" / "a" / "b" / "c" / "d" / "e" / "f" / "g" / "dl")
    (box.root / "outside").mkdir(parents=True)
    (box.root / "outside" / "kept").write_text("untouched")
    (box.dest / "model").mkdir(parents=True)
    return box


def climbing(rel: str) -> Reply:
    """`..` directories until six levels above the download directory, then a file there."""
    return files(folder("..")) if rel.count("..") < 6 else files(file("escaped"))


HOSTILE_LISTINGS: dict[str, Callable[[str], Reply]] = {
    "dotdot directories": climbing,
    "dotdot in a file path": lambda rel: files(file("../escaped")),
    "deep dotdot file path": lambda rel: files(file("/".join([".."] * 6 + ["escaped"]))),
    "absolute path": lambda rel: files(file("/etc/escaped")),
    "entry without path": lambda rel: files({"is_dir": False, "file_size": 1}),
    "NUL in a name": lambda rel: files(file("a\x00b")),
    "trailing slash": lambda rel: files(file("x/")),
    "non-string path": lambda rel: files(file(7)),
    "is_dir not a boolean": lambda rel: files({"path": "a", "is_dir": "false"}),
    "files not a list": lambda rel: js({"files": {"path": "a"}}),
    "path outside the listed directory": lambda rel: files(file("1/other-run/artifacts/x")),
    "a name listed twice": lambda rel: files(file("a"), file("a")),
    "negative file_size": lambda rel: files(file("a", -1)),
    "JSON nested beyond recursion": lambda rel: Reply(b"[" * 100_000, {"Content-Type": "application/json"}),
    "endless depth": lambda rel: files(folder("d")),
    "too wide": lambda rel: files(*(file(f"f{i}") for i in range(MAX_ENTRIES + 1))),
    "declared size beyond the bound": lambda rel: files(file("huge", 2**50)),
}


@pytest.mark.parametrize("listing", HOSTILE_LISTINGS.values(), ids=HOSTILE_LISTINGS.keys())
def test_hostile_listing_is_exit_3_and_writes_nothing(hostile: Callable[..., Hostile], sandbox: Sandbox,
                                                      listing: Callable[[str], Reply]) -> None:
    server = hostile(listing)
    before = snapshot(sandbox.root)
    with pytest.raises(RemoteError) as caught:
        MlflowRegistry(server.uri, {}, retry=FAST).download_artifacts("r1", "model", sandbox.dest)
    assert caught.value.exit_code == EXIT_RUNTIME
    assert f"{server.uri}{LISTINGS}" in str(caught.value) and "\n" not in str(caught.value)
    assert sandbox.outside(before) == {}
    assert sandbox.temp_files() == []
    assert [s for s in server.seen if s.startswith("get")] == []  # refused before any file was fetched
    assert len(server.seen) <= MAX_DEPTH + 1  # no endless listing


def test_symlinks_in_the_target_are_not_followed_out(hostile: Callable[..., Hostile], sandbox: Sandbox) -> None:
    (sandbox.dest / "model" / "evil").symlink_to(sandbox.root / "outside")
    (sandbox.dest / "model" / "kept").symlink_to(sandbox.root / "outside" / "kept")
    listings = {"model": files(folder("evil")), "model/evil": files(file("x"))}
    for listing, expected in ((listings.__getitem__, "evil/x"), (lambda rel: files(file("kept")), "kept")):
        server = hostile(listing)
        before = snapshot(sandbox.root)
        with pytest.raises(RemoteError, match=f"'{expected}' would lead out of") as caught:
            MlflowRegistry(server.uri, {}, retry=FAST).download_artifacts("r1", "model", sandbox.dest)
        assert server.uri in str(caught.value)
        assert sandbox.outside(before) == {} and sandbox.temp_files() == []
    assert (sandbox.root / "outside" / "kept").read_text() == "untouched"


BAD_BODIES: dict[str, tuple[Reply, Callable[[str], Reply], str]] = {
    "more bytes than declared": (files(file("w", 10)), lambda rel: Reply(b"x" * 100_000), "the 10 bytes its listing"),
    "a body whose gzip is garbage": (files(file("g")), lambda rel: Reply(b"not gzip", {"Content-Encoding": "gzip"}),
                                     "cannot be decoded"),
    "an endless error page": (files(file("e")), lambda rel: Reply(endless(), {}, 400), "HTTP 400"),
}


@pytest.mark.parametrize("case", BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_hostile_file_bodies_leave_no_file(hostile: Callable[..., Hostile], sandbox: Sandbox,
                                          case: tuple[Reply, Callable[[str], Reply], str]) -> None:
    listing, body, expected = case
    server = hostile(lambda rel: listing, body)
    before = snapshot(sandbox.root)
    with pytest.raises(RemoteError, match=expected) as caught:
        MlflowRegistry(server.uri, {}, retry=FAST).download_artifacts("r1", "model", sandbox.dest)
    assert server.uri in str(caught.value)
    assert sandbox.outside(before) == {} and sandbox.temp_files() == []
    assert sorted(p.name for p in (sandbox.dest / "model").iterdir()) == []
    assert server.sent < 32 * 2**20  # the endless page was not read to its end


def proxied(server: Hostile, limits: Limits) -> RunArtifacts:
    return RunArtifacts(MlflowHttp(server.uri, {}, retry=FAST), lambda run_id: f"mlflow-artifacts:/{ROOT}", limits)


def test_endless_bodies_stop_at_the_byte_bounds(hostile: Callable[..., Hostile], sandbox: Sandbox) -> None:
    one_file = hostile(lambda rel: files(file("endless")), lambda rel: Reply(endless()))
    endless_listing = hostile(lambda rel: Reply(endless(b'{"files": [' + b" " * 4096), {}))
    three = hostile(lambda rel: files(file("a"), file("b"), file("c")), lambda rel: Reply(b"x" * 400_000))
    cases = ((one_file, Limits(bytes=2**20), "more than 1,048,576 bytes in all"),
             (endless_listing, Limits(listing_bytes=2**16), "more than 65,536 bytes"),
             (three, Limits(bytes=2**20), "more than 1,048,576 bytes in all"))
    for server, limits, expected in cases:
        before = snapshot(sandbox.root)
        with pytest.raises(RemoteError, match=expected) as caught:
            proxied(server, limits).download("r1", "model", sandbox.dest)
        assert server.uri in str(caught.value)
        assert sandbox.outside(before) == {} and sandbox.temp_files() == []
        assert server.sent < 32 * 2**20
    assert sorted(p.name for p in (sandbox.dest / "model").iterdir()) == ["a", "b"]  # the third passed the bound


def test_an_honest_listing_downloads_in_either_path_form(hostile: Callable[..., Hostile], sandbox: Sandbox) -> None:
    """Bare names (as MLflow answers) and paths below the listed directory (as some servers do) both work."""
    tree = {"model": files(file("model.pkl", len("model/model.pkl")), folder("sub"), file("with space.txt")),
            "model/sub": files(file(f"{ROOT}/model/sub/conf.json"), folder("model/sub/deeper")),
            "model/sub/deeper": files(file("..x", 100))}
    server = hostile(lambda rel: tree.get(rel, files()), lambda rel: Reply(rel.encode()))  # a file lists empty
    before = snapshot(sandbox.root)
    registry = MlflowRegistry(server.uri, {}, retry=FAST)
    out = registry.download_artifacts("r1", "model", sandbox.dest)
    got = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert got == {name: f"model/{name}".encode() for name in
                   ("model.pkl", "with space.txt", "sub/conf.json", "sub/deeper/..x")}
    single = registry.download_artifacts("r1", "model/sub/conf.json", sandbox.dest / "one")
    assert single.read_bytes() == b"model/sub/conf.json"
    assert sandbox.outside(before) == {} and sandbox.temp_files() == []


ML_YAML = """\
version: 1
model: {{name: {model}, artifact: build/model}}
tracking: {{uri: "{uri}", experiment: {model}}}
pipeline:
  train: {{cmd: [python, -c, "pass"], outs: [build/model]}}
  evaluate: {{cmd: [python, evaluate.py], deps: [evaluate.py, build/model], metrics: build/metrics.json}}
compare:
  rescore_champion: true
  criteria:
    - {{metric: score, threshold: 0.1}}
"""
EVALUATE = 'import json, os; json.dump({"score": 0.5}, open(os.environ["MLOPS_BOT_METRICS_FILE"], "w"))\n'


def test_compare_rescoring_through_a_hostile_proxy_exits_3(hostile: Callable[..., Hostile], tmp_path: Path) -> None:
    """The reproduction from the issue: `compare` rescoring the champion wrote six levels up and exited 0."""
    server = hostile(climbing)
    project, temp = tmp_path / "project", tmp_path / "tmp" / "a" / "b" / "c" / "d"
    project.mkdir()
    temp.mkdir(parents=True)
    (project / "ml.yaml").write_text(textwrap.dedent(ML_YAML.format(model=MODEL, uri=server.uri)))
    (project / "evaluate.py").write_text(EVALUATE)
    before = snapshot(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "GITHUB_", "GITLAB_", "CI"))}
    done = subprocess.run([sys.executable, "-m", "mlops_bot", "-C", str(project), "compare", "--run", "r2"],
                          env={**env, "TMPDIR": str(temp)}, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == EXIT_RUNTIME, done.stderr
    assert f"MLflow: HTTP 200 from {server.uri}{LISTINGS}?path={ROOT}/model" in done.stderr
    assert "'..' is not a file name" in done.stderr
    changed = {k: v for k, v in set(snapshot(tmp_path).items()) ^ set(before.items())
               if not k.startswith("project/.mlops-bot/")}
    assert changed == {}  # the download refused before writing anything, and rescore removed its work directory
