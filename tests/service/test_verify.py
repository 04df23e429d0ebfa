"""Checking deliveries as MLflow, GitHub and GitLab sign them; each refusal names its reason and HTTP status."""

from __future__ import annotations

import hashlib
import json
import time

import pytest

from mlops_bot.service.verify import (
    MAX_DEPTH,
    Rejected,
    github_delivery,
    github_event,
    gitlab_delivery,
    gitlab_event,
    mlflow_event,
)
from tests.helpers.webhooks import (
    GITHUB_SECRET,
    GITLAB_TOKEN,
    SECRET,
    github_fixture,
    github_request,
    github_signed,
    gitlab_headers,
    gitlab_merge_request,
    mlflow_request,
)

ALIAS = {"name": "iris", "alias": "champion", "version": "4"}


def lower(headers: dict[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def refused(call: object, status: int, reason: str) -> Rejected:
    assert callable(call)
    with pytest.raises(Rejected) as caught:
        call()
    assert (caught.value.status, caught.value.reason) == (status, reason)
    return caught.value


def test_an_mlflow_alias_delivery_becomes_model_version_alias_set() -> None:
    body, headers = mlflow_request(ALIAS, delivery="5f0c6d1e-0000-4000-8000-000000000001")
    event = mlflow_event(lower(headers), body, SECRET, time.time())
    assert event.type == "model_version.alias_set" and event.source == "mlflow"
    assert event.id == "mlflow-5f0c6d1e-0000-4000-8000-000000000001"
    assert dict(event.data) == {"model": "iris", "alias": "champion", "version": "4"}
    assert event.subject == "models/iris/versions/4"


@pytest.mark.parametrize(("entity", "action", "kind"), [
    ("model_version", "created", "model_version.created"), ("model_version_tag", "set", "model_version.tag_set"),
    ("model_version_alias", "deleted", "model_version.alias_deleted"),
    ("registered_model", "created", "registered_model.created")])
def test_mlflow_registry_events_are_mapped(entity: str, action: str, kind: str) -> None:
    body, headers = mlflow_request({"name": "iris", "version": "1"}, entity, action)
    assert mlflow_event(lower(headers), body, SECRET, time.time()).type == kind


def test_mlflow_refusals() -> None:
    now = time.time()
    body, headers = mlflow_request(ALIAS)
    h = lower(headers)
    message = refused(lambda: mlflow_event(h, body, "another-secret", now), 401, "bad_signature").message
    assert SECRET not in message and h["x-mlflow-signature"] not in message
    refused(lambda: mlflow_event({**h, "x-mlflow-signature": ""}, body, SECRET, now), 401, "missing_signature")
    refused(lambda: mlflow_event(h, body + b" ", SECRET, now), 401, "bad_signature")  # body altered
    refused(lambda: mlflow_event({**h, "x-mlflow-delivery-id": "other"}, body, SECRET, now), 401, "bad_signature")
    refused(lambda: mlflow_event({**h, "x-mlflow-timestamp": "soon"}, body, SECRET, now), 400, "bad_timestamp")
    refused(lambda: mlflow_event(h, body, SECRET, now + 301), 400, "stale_timestamp")
    refused(lambda: mlflow_event(h, body, SECRET, now - 120), 400, "stale_timestamp")  # from the future
    assert mlflow_event(h, body, SECRET, now + 299).id  # within the window
    bad, bad_headers = mlflow_request(ALIAS, body=b'{"entity": "model_version_alias", "act')
    refused(lambda: mlflow_event(lower(bad_headers), bad, SECRET, now), 400, "malformed_json")
    listy, listy_headers = mlflow_request(ALIAS, body=b"[1, 2]")
    refused(lambda: mlflow_event(lower(listy_headers), listy, SECRET, now), 400, "malformed_json")
    prompt, prompt_headers = mlflow_request({"name": "p"}, "prompt", "created")
    refused(lambda: mlflow_event(lower(prompt_headers), prompt, SECRET, now), 422, "unknown_event")
    nameless, nameless_headers = mlflow_request({"alias": "champion"})
    refused(lambda: mlflow_event(lower(nameless_headers), nameless, SECRET, now), 422, "malformed_event")
    odd, odd_headers = mlflow_request(ALIAS, delivery="../../etc")
    refused(lambda: mlflow_event(lower(odd_headers), odd, SECRET, now), 400, "bad_header")


def test_github_deliveries() -> None:
    payload = {"ref": "refs/heads/main", "after": "a" * 40, "repository": {"full_name": "o/r"},
               "sender": {"login": "octocat"}}
    body, headers = github_request("push", payload)
    event = github_event(lower(headers), body, GITHUB_SECRET)
    assert event.type == "github.push" and event.data["ref"] == "refs/heads/main" and event.data["sha"] == "a" * 40
    assert event.subject == "repos/o/r" and event.id == "github-" + headers["X-GitHub-Delivery"]
    refused(lambda: github_event(lower(headers), body, "wrong"), 401, "bad_signature")
    refused(lambda: github_event({**lower(headers), "x-hub-signature-256": ""}, body, GITHUB_SECRET), 401,
            "missing_signature")
    odd, odd_headers = github_request("star", payload)
    refused(lambda: github_event(lower(odd_headers), odd, GITHUB_SECRET), 422, "unknown_event")


def test_gitlab_deliveries() -> None:
    body = json.dumps({"object_kind": "pipeline", "object_attributes": {"status": "success", "ref": "main"},
                       "project": {"path_with_namespace": "g/p"}}).encode()
    headers = {"x-gitlab-token": GITLAB_TOKEN, "x-gitlab-event": "Pipeline Hook", "idempotency-key": "k-1"}
    event = gitlab_event(headers, body, GITLAB_TOKEN)
    assert (event.type, event.id, event.data["status"]) == ("gitlab.pipeline", "gitlab-k-1", "success")
    refused(lambda: gitlab_event({**headers, "x-gitlab-token": GITLAB_TOKEN + "x"}, body, GITLAB_TOKEN), 401,
            "bad_signature")
    refused(lambda: gitlab_event({**headers, "x-gitlab-event": "System Hook"}, body, GITLAB_TOKEN), 422,
            "unknown_event")
    without_key = {k: v for k, v in headers.items() if k != "idempotency-key"}
    # Without a delivery header the id comes from the body: a replay of the same bytes has the same id.
    assert gitlab_event(without_key, body, GITLAB_TOKEN).id == gitlab_event(without_key, body, GITLAB_TOKEN).id


@pytest.mark.parametrize("stamp", ["²", "１２３", "١٢٣", "-1", "1e9", "+17", " 17", "17 ", "9" * 13, ""])
def test_a_timestamp_not_of_ascii_unix_seconds_is_refused_400(stamp: str) -> None:
    # isdigit() takes '²' (and int() then fails: 500) and other scripts' digits (int() takes those: 123)
    body, headers = mlflow_request(ALIAS, stamp=0)
    h = {**lower(headers), "x-mlflow-timestamp": stamp}
    message = refused(lambda: mlflow_event(h, body, SECRET, time.time()), 400, "bad_timestamp").message
    assert h["x-mlflow-delivery-id"] in message


def test_json_nested_deeper_than_the_limit_is_refused_400_before_parsing() -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    github_headers = github_signed("push", deep)[1]
    refused(lambda: github_event(lower(github_headers), deep, GITHUB_SECRET), 400, "too_deep")
    gitlab = {"x-gitlab-token": GITLAB_TOKEN, "x-gitlab-event": "Push Hook", "idempotency-key": "k-deep"}
    refused(lambda: gitlab_event(gitlab, b'{"a": ' + b"{" * 100_000, GITLAB_TOKEN), 400, "too_deep")
    nested: object = {"leaf": "[[[[{{{{"}  # brackets inside strings do not count
    for _ in range(MAX_DEPTH - 3):  # with the body's object and its "data": MAX_DEPTH levels
        nested = {"n": nested}
    body, headers = mlflow_request({**ALIAS, "extra": nested})
    assert mlflow_event(lower(headers), body, SECRET, time.time()).type == "model_version.alias_set"
    body, headers = mlflow_request({**ALIAS, "extra": {"n": nested}})
    refused(lambda: mlflow_event(lower(headers), body, SECRET, time.time()), 400, "too_deep")


def test_github_and_gitlab_deliveries_carry_their_body_digest_and_event_ids() -> None:
    opened = github_fixture("pull_request-opened.payload.json")
    keys = github_delivery(lower(github_signed("pull_request", opened)[1]), opened, GITHUB_SECRET).keys
    assert keys[0] == "github-body:" + hashlib.sha256(opened).hexdigest() and keys[1].startswith("github-event:")
    again = github_delivery(lower(github_signed("pull_request", opened)[1]), opened, GITHUB_SECRET).keys
    assert again == keys  # another delivery id changes nothing
    doc = json.loads(opened)
    del doc["installation"]
    other_hook = json.dumps(doc).encode()
    assert github_delivery(lower(github_signed("pull_request", other_hook)[1]), other_hook, GITHUB_SECRET).keys[1] \
        == keys[1]
    synchronize = github_fixture("pull_request-synchronize.payload.json")
    assert not set(keys) & set(github_delivery(lower(github_signed("pull_request", synchronize)[1]), synchronize,
                                               GITHUB_SECRET).keys)
    dispatch = github_fixture("workflow_dispatch-payload.json")  # no ids of its own: its body guards it
    assert len(github_delivery(lower(github_signed("workflow_dispatch", dispatch)[1]), dispatch,
                               GITHUB_SECRET).keys) == 1
    body = gitlab_merge_request()
    headers = lower(gitlab_headers())
    first = gitlab_delivery(headers, body, GITLAB_TOKEN)
    assert first.event.id == "gitlab-" + headers["idempotency-key"] and len(first.keys) == 2
    later = gitlab_delivery(lower(gitlab_headers()), gitlab_merge_request("update", "2025-03-04 11:00:00 UTC"),
                            GITLAB_TOKEN)
    assert not set(first.keys) & set(later.keys)
