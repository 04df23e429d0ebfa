"""One redaction for URLs in logs and messages (support/urls.py): credentials, query string and fragment are
dropped everywhere. The webhook target once kept credentials out but not tokens in the fragment, the gitops
target dropped only credentials."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from mlops_bot.config.model import DeployTarget
from mlops_bot.deploy import gitops, webhook
from mlops_bot.deploy.base import DeployRequest, DeploySession
from mlops_bot.errors import RemoteError
from mlops_bot.registry.mlflow.http import MlflowHttp
from mlops_bot.support.urls import redact, redact_text

SECRETS = ("deployer", "hunter2", "sig=", "s3cret-query", "frag-token")


@pytest.mark.parametrize(("url", "shown"), [
    ("https://deployer:hunter2@example.com/hook?sig=s3cret-query#frag-token", "https://example.com/hook"),
    ("https://token@example.com", "https://example.com"),
    ("https://example.com?private_token=s3cret-query", "https://example.com"),
    ("https://user:pa?ss#word@example.com/p", "https://example.com/p"),  # an unescaped ? or # in a password
    ("http://127.0.0.1:8080/api/2.0/mlflow", "http://127.0.0.1:8080/api/2.0/mlflow"),
    ("git@github.com:org/repo.git", "git@github.com:org/repo.git"),
    ("/srv/repos/gitops#1", "/srv/repos/gitops#1"),  # a path, not a URL: left alone
    ("", ""),
])
def test_redact(url: str, shown: str) -> None:
    assert redact(url) == shown


def test_redact_text_finds_every_url_in_a_tools_message() -> None:
    text = ("fatal: unable to access 'https://deployer:hunter2@example.com/repo.git/?x=s3cret-query': "
            "see https://u:p@other.example/a#frag-token")
    assert redact_text(text) == ("fatal: unable to access 'https://example.com/repo.git/': "
                                 "see https://other.example/a")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def webhook_failure(url: str, tmp_path: Path) -> str:
    with pytest.raises(RemoteError) as caught:
        webhook.deliver(url, b"{}", {}, webhook.DeliveryOptions(attempts=1, echo=lambda _: None))
    return str(caught.value)


def gitops_failure(url: str, tmp_path: Path) -> str:
    target = DeployTarget("prod", "gitops", file="m.yaml", repo=url, set={"a": "b"}, timeout=20)
    session = DeploySession(root=tmp_path, delivery="d", echo=lambda _: None)
    with pytest.raises(RemoteError) as caught:
        gitops.deploy(target, DeployRequest("m", "1", "models:/m/1"), session)
    return str(caught.value)


@pytest.mark.parametrize("failure", [webhook_failure, gitops_failure], ids=["webhook", "gitops"])
def test_both_targets_keep_credentials_query_and_fragment_out_of_their_errors(tmp_path: Path, failure: object) -> None:
    port = free_port()  # nobody listens: the connection is refused at once
    url = f"http://deployer:hunter2@127.0.0.1:{port}/repo.git?sig=s3cret-query#frag-token"
    message = failure(url, tmp_path)  # type: ignore[operator]
    assert f"127.0.0.1:{port}/repo.git" in message
    assert not [secret for secret in SECRETS if secret in message], message


def test_the_registry_client_shows_its_tracking_uri_redacted() -> None:
    http = MlflowHttp("https://deployer:hunter2@mlflow.example/?sig=s3cret-query#frag-token", {})
    try:
        assert http.display == "https://mlflow.example"
    finally:
        http.close()
