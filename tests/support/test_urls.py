"""One redaction for URLs in logs, messages, files and links (support/urls.py): credentials, query string and
fragment are dropped everywhere. The webhook target once kept credentials out but not tokens in the fragment,
the gitops target dropped only credentials; run links once carried the tracking URI whole, password and all."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from mlops_bot.config.model import DeployTarget
from mlops_bot.deploy import gitops, webhook
from mlops_bot.deploy.base import DeployRequest, DeploySession
from mlops_bot.errors import RemoteError
from mlops_bot.registry.mlflow.http import MlflowHttp
from mlops_bot.support.urls import link_base, public_url, redact, redact_text

SECRETS = ("deployer", "hunter2", "sig=", "s3cret-query", "frag-token")


@pytest.mark.parametrize(("url", "shown"), [
    ("https://deployer:hunter2@example.com/hook?sig=s3cret-query#frag-token", "https://example.com/hook"),
    ("https://token@example.com", "https://example.com"),
    ("https://example.com?private_token=s3cret-query", "https://example.com"),
    ("https://user:pa?ss#word@example.com/p", "https://example.com/p"),  # an unescaped ? or # in a password
    ("https://user:ab/cd+ef==@example.com/p", "https://example.com/p"),  # and a '/' (base64 passwords have them)
    ("https://registry.npmjs.org/@scope/pkg", "https://registry.npmjs.org/@scope/pkg"),  # an '@' in the path
    ("https://example.com:8443/a?next=/b@c", "https://example.com:8443/a"),  # an '@' in the query
    ("http://127.0.0.1:8080/api/2.0/mlflow", "http://127.0.0.1:8080/api/2.0/mlflow"),
    ("git@github.com:org/repo.git", "git@github.com:org/repo.git"),
    ("/srv/repos/gitops#1", "/srv/repos/gitops#1"),  # a path, not a URL: left alone
    ("", ""),
])
def test_redact(url: str, shown: str) -> None:
    assert redact(url) == shown


@pytest.mark.parametrize(("url", "href"), [
    ("https://u:p@example.com/mlflow/?token=t#/experiments/1", "https://example.com/mlflow/#/experiments/1"),
    ("HTTP://example.com/a b(c)", "http://example.com/a%20b%28c%29"),  # nothing can end a markdown link
    ("http://example.com/x)![i](http://evil.example/i.png", "http://example.com/x%29![i]%28http://evil.example/i.png"),
    ("javascript:alert(1)", None), ("javascript://%0aalert(1)", None), ("data:text/html,x", None),
    ("file:///etc/passwd", None), ("ftp://example.com/f", None), ("https:///path", None), ("", None),
])
def test_only_http_urls_become_links_and_without_credentials(url: str, href: str | None) -> None:
    assert public_url(url) == href


def test_link_base_drops_the_uris_own_fragment_and_trailing_slash() -> None:
    assert link_base("https://u:p@mlflow.example/root/?token=t#frag") == "https://mlflow.example/root"
    assert link_base("local") is None and link_base("sqlite:///mlruns.db") is None


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


def test_an_unsupported_tracking_uri_is_named_without_its_password(tmp_path: Path) -> None:
    from mlops_bot.errors import UsageError
    from mlops_bot.registry import open_registry

    with pytest.raises(UsageError) as caught:
        open_registry("htps://deployer:hunter2@mlflow.example/?sig=s3cret-query", tmp_path)
    assert "'htps://mlflow.example/'" in str(caught.value)
    assert not [secret for secret in SECRETS if secret in str(caught.value)]


def test_the_registry_client_shows_its_tracking_uri_redacted() -> None:
    http = MlflowHttp("https://deployer:hunter2@mlflow.example/?sig=s3cret-query#frag-token", {})
    try:
        assert http.display == "https://mlflow.example"
    finally:
        http.close()
