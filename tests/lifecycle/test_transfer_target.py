"""The target registry's credentials and what counts as the source's own server (lifecycle/transfer_target.py);
the refusals themselves, against real servers, are in test_transfer.py and tests/flows/test_promote_copy.py."""

from __future__ import annotations

from mlops_bot.lifecycle.transfer_target import server_key, target_env


def test_the_target_reads_only_its_own_credentials() -> None:
    env = {"MLFLOW_TRACKING_TOKEN": "source-token", "MLFLOW_TRACKING_USERNAME": "source-user",
           "MLOPS_BOT_TARGET_TRACKING_TOKEN": "target-token", "MLOPS_BOT_TARGET_TRACKING_INSECURE_TLS": "true",
           "HOME": "/home/x"}
    assert target_env(env) == {"MLFLOW_TRACKING_TOKEN": "target-token", "MLFLOW_TRACKING_INSECURE_TLS": "true",
                               "HOME": "/home/x", "MLOPS_BOT_TARGET_TRACKING_TOKEN": "target-token",
                               "MLOPS_BOT_TARGET_TRACKING_INSECURE_TLS": "true"}
    assert "MLFLOW_TRACKING_USERNAME" not in target_env(env)


def test_server_key_sees_through_spelling_and_credentials() -> None:
    assert server_key("HTTPS://u:p@Example.com:443/mlflow/?x=1") == server_key("https://example.com/mlflow")
    assert server_key("http://localhost:5000") == server_key("http://127.0.0.1:5000/")
    assert server_key("http://127.0.0.1:5000") != server_key("http://127.0.0.1:5001")
    assert server_key("https://dev.example") != server_key("https://prod.example")
