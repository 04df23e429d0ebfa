"""Running the real CI runners: `act` (GitHub Actions, host mode, offline) and `gitlab-ci-local` (shell executor),
and reading what they printed."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tests.helpers.e2e import ROOT, host_env, tool

ACTION = "mlops-bot/mlops-bot@v1"
_FIXTURES = Path(__file__).resolve().parent / "fixtures"
# The pinned third-party actions of workflows/, and the local folders act takes them from instead (act's host mode
# cannot fetch them offline, and GitHub's artifact service is not here): see each folder's action.yml.
STAND_INS = {
    "actions/checkout@08c6903cd8c0fde910a37f88322edcfb5dd907a8": _FIXTURES / "checkout",
    "actions/upload-artifact@ea165f8d65b6e75b540449e92b4886f43607fa02": _FIXTURES / "upload-artifact",
    "actions/download-artifact@d3f86a106a0bac45b974a628896c90dbdf5c8093": _FIXTURES / "download-artifact",
}
TIMEOUT = 300


@dataclass(frozen=True)
class Run:
    returncode: int
    output: str

    def annotations(self, level: str) -> list[str]:
        """The messages of `::error`/`::warning` workflow commands the job printed (act echoes them)."""
        found = re.findall(rf"::{level}(?: [^:]*)?::(.*)$", self.output, flags=re.MULTILINE)
        return [m.replace("%0A", "\n").replace("%25", "%") for m in found]

    def echoed(self, key: str) -> list[str]:
        """Values printed as `key=value` by a step (the workflows' "Show the outcome" steps)."""
        return re.findall(rf"\| .*\b{re.escape(key)}=(\S*)", self.output)

    def explain(self) -> str:
        return f"exit code {self.returncode}; the runner printed:\n{self.output[-12000:]}"


def _dotenv(path: Path, values: Mapping[str, str]) -> Path:
    path.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    return path


def run_act(repo: Path, event: str, payload: Mapping[str, object], workflow: str, *, action: Path, cache: Path,
            env: Mapping[str, str], secrets: Mapping[str, str], variables: Mapping[str, str]) -> Run:
    """act runs `workflow` of `repo` for `event` in host mode, the action and the stand-ins taken from local
    folders; artifacts are kept in `cache`'s sibling folder `artifacts`."""
    work = cache.parent / f"{event}-files"
    work.mkdir(exist_ok=True)
    artifacts = cache.parent / "artifacts"
    event_file = work / "event.json"
    event_file.write_text(json.dumps(payload))
    cmd = [
        str(tool("act")), event, "--workflows", str(repo / ".github" / "workflows" / workflow),
        "--eventpath", str(event_file), "--platform", "ubuntu-latest=-self-hosted", "--action-offline-mode",
        "--action-cache-path", str(cache), "--no-skip-checkout",
        "--local-repository", f"{ACTION}={action}",
        *[arg for ref, folder in STAND_INS.items() for arg in ("--local-repository", f"{ref}={folder}")],
        "--env-file", str(_dotenv(work / "env", {"MLOPS_BOT_E2E_REPO": str(repo),
                                                 "MLOPS_BOT_E2E_ARTIFACTS": str(artifacts), **env})),
        "--secret-file", str(_dotenv(work / "secrets", secrets)),
        "--var-file", str(_dotenv(work / "vars", variables)),
    ]
    done = subprocess.run(cmd, cwd=repo, env=host_env(), capture_output=True, text=True, timeout=TIMEOUT)
    return Run(done.returncode, done.stdout + done.stderr)


def run_gitlab_ci_local(repo: Path, variables: Mapping[str, str], unset: tuple[str, ...] = ()) -> Run:
    """gitlab-ci-local runs the pipeline of `repo` (the jobs whose rules match) with the shell executor;
    `variables` play the part of GitLab's predefined and CI/CD variables, `unset` removes some of its own."""
    cmd = [str(tool("node")), str(tool("gitlab-ci-local")), "--force-shell-executor", "--no-color",
           "--max-job-name-padding", "0"]
    for key, value in variables.items():
        cmd += ["--variable", f"{key}={value}"]
    for key in unset:
        cmd += ["--unset-variable", key]
    done = subprocess.run(cmd, cwd=repo, env=host_env({"HOME": str(repo.parent)}), capture_output=True, text=True,
                          timeout=TIMEOUT)
    return Run(done.returncode, done.stdout + done.stderr)


__all__ = ["ROOT", "Run", "run_act", "run_gitlab_ci_local"]
