"""What a child process may see of the job's environment."""

from __future__ import annotations

import pytest

from mlops_bot.support.environment import child_environment, is_forbidden

JOB = {
    "PATH": "/usr/bin", "HOME": "/home/runner", "LC_ALL": "C.UTF-8", "CI": "true",
    "GITHUB_TOKEN": "ghs_secret", "GH_TOKEN": "ghp_secret", "CI_JOB_TOKEN": "glcbt-secret",
    "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "oidc", "GITHUB_ENV": "/tmp/env-file", "GITHUB_OUTPUT": "/tmp/out",
    "MLOPS_BOT_GITHUB_WEBHOOK_SECRET": "whsec", "DEPLOY_HMAC": "hmac",
    "MLFLOW_TRACKING_TOKEN": "mlflow-token", "MLFLOW_RUN_ID": "someone-elses-run", "DATABRICKS_TOKEN": "dapi",
    "AWS_SECRET_ACCESS_KEY": "aws", "AWS_REGION": "eu-west-1", "DATA_DIR": "/data",
}


def test_a_child_sees_what_programs_need_and_nothing_else_by_default() -> None:
    assert child_environment(JOB) == {"PATH": "/usr/bin", "HOME": "/home/runner", "LC_ALL": "C.UTF-8", "CI": "true"}


def test_tracking_adds_the_mlflow_and_databricks_client_settings_but_never_a_run_id() -> None:
    seen = child_environment(JOB, tracking=True)
    assert seen["MLFLOW_TRACKING_TOKEN"] == "mlflow-token" and seen["DATABRICKS_TOKEN"] == "dapi"
    assert "MLFLOW_RUN_ID" not in seen


def test_pass_env_names_and_globs_widen_it() -> None:
    seen = child_environment(JOB, ["AWS_*", "DATA_DIR"])
    assert {k: seen[k] for k in ("AWS_SECRET_ACCESS_KEY", "AWS_REGION", "DATA_DIR")} == {
        "AWS_SECRET_ACCESS_KEY": "aws", "AWS_REGION": "eu-west-1", "DATA_DIR": "/data"}


@pytest.mark.parametrize("pattern", ["GITHUB_TOKEN", "*TOKEN*", "*", "GITHUB_*", "MLOPS_BOT_*", "ACTIONS_*",
                                     "DEPLOY_*"])
def test_the_bots_secrets_never_pass_whatever_pass_env_says(pattern: str) -> None:
    seen = child_environment(JOB, [pattern], tracking=True, secrets={"DEPLOY_HMAC"})
    leaked = {"GITHUB_TOKEN", "GH_TOKEN", "CI_JOB_TOKEN", "ACTIONS_ID_TOKEN_REQUEST_TOKEN", "GITHUB_ENV",
              "GITHUB_OUTPUT", "MLOPS_BOT_GITHUB_WEBHOOK_SECRET", "DEPLOY_HMAC"} & set(seen)
    assert not leaked


def test_forbidden_names() -> None:
    assert is_forbidden("GITHUB_TOKEN") and is_forbidden("MLOPS_BOT_ANYTHING") and is_forbidden("ACTIONS_RUNTIME_URL")
    assert is_forbidden("HMAC", secrets={"HMAC"})
    assert not is_forbidden("AWS_REGION") and not is_forbidden("GITHUB_SHA")
