"""A git repository the bot changes: a shallow clone in a temporary directory, commits made in it, and a change
proposed on a branch of the bot's own with a pull/merge request. The gitops deploy target (its pull_request
mode) and the `open_pr` action of `on:` rules both go through `propose`, so there is one copy of the rules:

- the branch is the bot's: it is rebuilt on the current base, pushed with a lease (a branch somebody changed
  since we looked is never overwritten), and left alone when it holds the proposed files already (an earlier
  run pushed them: its commit, and the review on it, stay);
- the forge opens the pull/merge request, or finds the open one (`Forge.open_pull_request`).

git authenticates as it is configured (credential helper, SSH agent, or a token in the URL). `token_config`
adds the CI job's token for the forge's own host, as actions/checkout does, for the callers that ask for it.
Every URL shown goes through support/urls.py; git never waits for a password prompt.
"""

from __future__ import annotations

import base64
import contextlib
import re
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from ..ci.context import token_of
from ..errors import RemoteError, UsageError
from ..support.urls import redact, redact_text
from .base import ChangeRequests

GIT_TIMEOUT_S = 300.0
BOT_IDENTITY = ("-c", "user.name=mlops-bot", "-c", "user.email=mlops-bot@users.noreply.localhost")
_SCP_LIKE = re.compile(r"^[\w.-]+@[\w.-]+:")


class Git:
    def __init__(self, work: Path, timeout: float, url: str, env: Mapping[str, str]) -> None:
        self.work, self.timeout, self.url = work, timeout, url
        # Never wait for a password prompt; English messages, since a rejected push is recognised by its text.
        self.env = {**env, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}

    def run(self, *args: str, check: bool = True, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        try:
            done = subprocess.run(["git", *args], cwd=cwd or self.work, env=self.env, capture_output=True, text=True,
                                  timeout=self.timeout, stdin=subprocess.DEVNULL, check=False)
        except subprocess.TimeoutExpired:
            raise RemoteError("git", None, redact(self.url), f"git {args[0]} timed out after {self.timeout:g}s; "
                              "check the network or raise the target's timeout") from None
        except FileNotFoundError:
            raise UsageError("changing a git repository needs the `git` program; install it.") from None
        if check and done.returncode != 0:
            raise RemoteError("git", None, redact(self.url), f"git {args[0]} failed: {self.tail(done)}")
        return done

    def tail(self, done: subprocess.CompletedProcess[str]) -> str:
        lines = [line.strip() for line in (done.stderr or done.stdout).splitlines() if line.strip()]
        return redact_text(" | ".join(lines[-3:])) or f"exit code {done.returncode}"

    def out(self, *args: str) -> str:
        return self.run(*args).stdout.strip()


def is_remote(url: str) -> bool:
    return "://" in url or bool(_SCP_LIKE.match(url))


def origin_url(root: Path, env: Mapping[str, str], missing: str) -> str:
    """The URL of the `origin` remote of the repository holding `root` (a path as a file:// URL, so that
    --depth applies to local clones); a UsageError saying `missing` when there is none."""
    done = Git(root, 30.0, str(root), env).run("remote", "get-url", "origin", check=False)
    if done.returncode != 0 or not done.stdout.strip():
        raise UsageError(missing)
    url = done.stdout.strip()
    return url if is_remote(url) else (root / url).resolve().as_uri()


@contextlib.contextmanager
def clone(url: str, env: Mapping[str, str], timeout: float = GIT_TIMEOUT_S, branch: str | None = None) \
        -> Iterator[tuple[Git, str]]:
    """A shallow clone of `branch` (default: the remote's default branch) in a temporary directory, removed
    afterwards; yields it and the name of the branch checked out."""
    with tempfile.TemporaryDirectory(prefix="mlops-bot-git-") as tmp:
        work = Path(tmp) / "repo"
        git = Git(work, timeout, url, env)
        named = ("--branch", branch) if branch else ()
        git.run("clone", "--quiet", "--depth", "1", "--no-tags", *named, "--", url, str(work), cwd=Path(tmp))
        yield git, git.out("symbolic-ref", "--short", "HEAD")


def commit(git: Git, paths: Sequence[str], subject: str, body: str) -> str:
    """Commits `paths` as the configured git identity (mlops-bot's when there is none); the new commit's sha."""
    identity = () if git.run("config", "user.email", check=False).stdout.strip() else BOT_IDENTITY
    git.run("add", "--", *paths)
    git.run(*identity, "commit", "--quiet", "-m", subject, "-m", body)
    return git.out("rev-parse", "HEAD")


@dataclass(frozen=True)
class Proposal:
    """A change for review: HEAD of the clone (committed on top of `base`) goes to the branch `head`."""

    head: str
    base: str
    paths: tuple[str, ...]  # what the change touches: a branch holding the same content needs no new push
    title: str
    body: str  # the pull/merge request's description


def propose(git: Git, forge: ChangeRequests, proposal: Proposal) -> tuple[str, str]:
    """Pushes the change to its branch (unless the branch holds it already) and opens the pull/merge request,
    or finds the open one. Returns (its URL, the branch's commit)."""
    head = proposal.head
    sha = git.out("rev-parse", "HEAD")
    remote = remote_head(git, head)
    if remote and _same_files(git, remote, head, proposal.paths):
        sha = remote  # pushed by an earlier run: keep that commit (and the review on it)
    else:
        # Our own branch, rebuilt on the current base; the lease keeps a branch changed since we looked intact.
        lease = f"--force-with-lease=refs/heads/{head}:{remote or ''}"
        git.run("push", "--quiet", lease, "origin", f"HEAD:refs/heads/{head}")
    link = forge.open_pull_request(head=head, base=proposal.base, title=proposal.title, body=proposal.body)
    return link, sha


def remote_head(git: Git, branch: str) -> str:
    """The commit the remote's `branch` points at; "" when it has no such branch."""
    found = git.run("ls-remote", "--heads", "origin", f"refs/heads/{branch}").stdout.split()
    return found[0] if found else ""


def remote_file(git: Git, branch: str, path: str) -> str | None:
    """The text of `path` on the remote's `branch`; None when the branch or the file is missing."""
    if not remote_head(git, branch):
        return None
    git.run("fetch", "--quiet", "--depth", "1", "origin", f"refs/heads/{branch}")
    done = git.run("show", f"FETCH_HEAD:{path}", check=False)
    return done.stdout if done.returncode == 0 else None


def _same_files(git: Git, sha: str, head: str, paths: Sequence[str]) -> bool:
    git.run("fetch", "--quiet", "--depth", "1", "origin", f"refs/heads/{head}")
    return git.run("diff", "--quiet", sha, "HEAD", "--", *paths, check=False).returncode == 0


def token_config(url: str, env: Mapping[str, str]) -> dict[str, str]:
    """Environment variables (GIT_CONFIG_*) that make git send the CI job's forge token to the forge's own
    host: GitHub's (GITHUB_SERVER_URL, github.com by default) with GITHUB_TOKEN/GH_TOKEN, GitLab's
    (CI_SERVER_URL) with GITLAB_TOKEN or CI_JOB_TOKEN. Only for an https URL of that host that carries no
    credentials of its own; {} otherwise, and git authenticates as it is configured."""
    parts = urlsplit(url)
    if parts.scheme != "https" or parts.username or parts.password or not parts.hostname:
        return {}
    for server, user, token in _forge_tokens(env):
        there = urlsplit(server)
        if there.scheme == "https" and (there.hostname, there.port) == (parts.hostname, parts.port):
            credentials = base64.b64encode(f"{user}:{token}".encode()).decode()
            count = int(env.get("GIT_CONFIG_COUNT", "0") or 0)  # settings already given this way stay in force
            return {"GIT_CONFIG_COUNT": str(count + 1), f"GIT_CONFIG_KEY_{count}": f"http.{server}/.extraheader",
                    f"GIT_CONFIG_VALUE_{count}": f"AUTHORIZATION: basic {credentials}"}
    return {}


def _forge_tokens(env: Mapping[str, str]) -> Iterator[tuple[str, str, str]]:
    """(server URL, user name, token) for each forge whose token is set."""
    _, github = token_of("github", env)
    if github:
        yield (env.get("GITHUB_SERVER_URL") or "https://github.com").rstrip("/"), "x-access-token", github
    name, gitlab = token_of("gitlab", env)
    if gitlab and env.get("CI_SERVER_URL"):
        yield env["CI_SERVER_URL"].rstrip("/"), "gitlab-ci-token" if name == "CI_JOB_TOKEN" else "oauth2", gitlab
