"""The bearer token of a tracking server, renewed when the server says it expired.

Azure ML's Microsoft Entra tokens (and Databricks' OAuth tokens) last about an hour; a training step can take
longer, so the token the bot started with is refused when it records the run. With
`MLFLOW_TRACKING_TOKEN_COMMAND` (for example `az account get-access-token --resource https://ml.azure.com
--query accessToken -o tsv`) the bot runs that command for a token at first use and again after a 401, then
repeats the refused request once. Without it, a 401 re-reads `MLFLOW_TRACKING_TOKEN` (a long-running `serve`
may see it renewed) and fails with what to do when it has not changed.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import threading
from collections.abc import Mapping

from ...errors import UsageError

TOKEN = "MLFLOW_TRACKING_TOKEN"
TOKEN_COMMAND = "MLFLOW_TRACKING_TOKEN_COMMAND"
COMMAND_TIMEOUT = 120.0  # `az account get-access-token` takes a few seconds; a hung login must not hang CI


class TokenSource:
    """Where the token comes from: `env` (read again on renewal), or the command it names."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env
        self._lock = threading.Lock()
        self._command = env.get(TOKEN_COMMAND, "").strip()
        self._token = env.get(TOKEN, "") if not self._command else ""

    @property
    def configured(self) -> bool:
        return bool(self._command or self._token)

    def current(self) -> str:
        """The token to send now ('' for none); the command runs at first use."""
        with self._lock:
            if not self._token and self._command:
                self._token = self._run_command()
            return self._token

    def renew(self, refused: str) -> str | None:
        """A token other than `refused`, or None when there is no way to get one (the 401 stands)."""
        with self._lock:
            if self._token != refused:  # another thread renewed it meanwhile
                return self._token
            fresh = self._run_command() if self._command else self._env.get(TOKEN, "")
            if not fresh or fresh == refused:
                return None
            self._token = fresh
            return fresh

    def _run_command(self) -> str:
        try:
            argv = shlex.split(self._command)
        except ValueError as exc:
            raise UsageError(f"{TOKEN_COMMAND} is not a command line ({exc}); quote it as a shell would.") from None
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=COMMAND_TIMEOUT, check=False,
                                  stdin=subprocess.DEVNULL, env=dict(os.environ))
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise UsageError(f"{TOKEN_COMMAND} ({argv[0] if argv else ''}) could not run: {exc}; check that it is "
                             "installed and logged in, and that it prints a token.") from None
        token = done.stdout.strip()
        if done.returncode != 0 or not token or len(token.split()) != 1:
            why = (done.stderr.strip().splitlines() or ["no output"])[-1][:200]
            raise UsageError(f"{TOKEN_COMMAND} ({argv[0]}) exited {done.returncode} without printing a token "
                             f"({why}); run it by hand to see why (an expired login?).")
        return token
