"""What a child process (a pipeline step, the champion's rescoring, a command deploy) sees of our environment.

Default deny: the code a step runs may come from a pull request, and the job's environment holds the
forge token, the CI's job tokens and file-command channels, and the bot's own secrets. A child gets:

- RUNTIME: what programs need to run (PATH, HOME, locale, temp dir, proxies, TLS bundles, Python, thread and
  accelerator settings), and `CI`;
- TRACKING (only where the child logs to the tracking server or reads the registry): MLflow's and
  Databricks' client settings and credentials;
- what its ml.yaml entry names in `pass_env` (names or shell-style globs, e.g. `AWS_*`);
- what the bot sets for it (the step's declared `env`, the run id, the model paths).

NEVER is removed whatever `pass_env` says, since a pull request can edit ml.yaml too; `config` refuses a
`pass_env` or `${VAR}` that names one of them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from fnmatch import fnmatchcase

RUNTIME = frozenset({
    "PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "TZ", "TERM", "TMPDIR", "TEMP", "TMP",
    "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
    "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE",
    "PYTHONPATH", "PYTHONHASHSEED", "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE", "PYTHONUTF8",
    "PYTHONWARNINGS", "VIRTUAL_ENV", "CONDA_PREFIX", "CONDA_DEFAULT_ENV", "LD_LIBRARY_PATH",
    "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS",
    "CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES", "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME",
    "MPLBACKEND", "MPLCONFIGDIR", "CI",
})
RUNTIME_PATTERNS = ("LC_*",)
TRACKING_PATTERNS = ("MLFLOW_*", "DATABRICKS_*")
# The bot's own settings and secrets, the forge tokens, the CI's job tokens and credentials, and the
# file-command channels through which a step could set outputs or variables of later workflow steps.
NEVER = frozenset({
    "GITHUB_TOKEN", "GH_TOKEN", "GITLAB_TOKEN", "CI_JOB_TOKEN", "CI_JOB_JWT", "CI_JOB_JWT_V1", "CI_JOB_JWT_V2",
    "CI_REGISTRY_PASSWORD", "CI_DEPLOY_PASSWORD", "CI_REPOSITORY_URL", "CI_DEPENDENCY_PROXY_PASSWORD",
    "GITHUB_ENV", "GITHUB_OUTPUT", "GITHUB_PATH", "GITHUB_STATE", "GITHUB_STEP_SUMMARY",
})
NEVER_PATTERNS = ("MLOPS_BOT_*", "ACTIONS_*")
_SET_BY_THE_BOT = frozenset({"MLFLOW_RUN_ID"})  # which run a child logs to is ours to say, never inherited


def is_forbidden(name: str, secrets: Iterable[str] = ()) -> bool:
    """True for a variable no child may see: NEVER, NEVER_PATTERNS, or one of `secrets` (names ml.yaml
    declares as secrets, e.g. a webhook target's secret_env)."""
    return name in NEVER or name in set(secrets) or any(fnmatchcase(name, p) for p in NEVER_PATTERNS)


def child_environment(environ: Mapping[str, str], pass_env: Iterable[str] = (), *, tracking: bool = False,
                      secrets: Iterable[str] = ()) -> dict[str, str]:
    """The part of `environ` a child may see (see the module docstring); the caller adds what it sets."""
    secret_names = set(secrets)
    patterns = (*RUNTIME_PATTERNS, *(TRACKING_PATTERNS if tracking else ()), *pass_env)
    return {name: value for name, value in environ.items()
            if (name in RUNTIME or any(fnmatchcase(name, p) for p in patterns))
            and name not in _SET_BY_THE_BOT and not is_forbidden(name, secret_names)}
