"""The GitLab adapter against the local GitLab server: the sticky MR note, commit statuses, retries, errors."""

from __future__ import annotations

import pytest

from mlops_bot.errors import AuthError, NotFound, RemoteError
from mlops_bot.forges.base import PermissionDenied, StatusRef
from mlops_bot.forges.gitlab import GitLabForge, GitLabSettings
from tests.helpers.ci_env import GITLAB_TOKEN, MR_SHA
from tests.servers.gitlab_server import GitLabServer

MARKER = "<!-- mlops-bot:report model=iris-classifier -->"


def forge(server: GitLabServer, token: str = GITLAB_TOKEN, iid: int = 7, job_token: bool = False,
          **kwargs: object) -> GitLabForge:
    settings = GitLabSettings(server_url=server.url, project="42", project_path="group/project", mr_iid=iid,
                              **kwargs)  # type: ignore[arg-type]
    return GitLabForge(settings, token, job_token=job_token)


def test_the_merge_request_note_is_created_then_edited(gitlab: GitLabServer) -> None:
    for i in range(130):  # two pages of 100, with quoted markers and a system note on the way
        text = f"> {MARKER}" if i % 30 == 1 else f"note {i}"
        gitlab.add_note(7, text, f"dev{i % 4}", system=(i == 2))
    gitlab.add_note(7, f"{MARKER} added a commit", "project_42_bot_1", system=True)
    first = forge(gitlab).upsert_comment(MARKER, f"{MARKER}\nv1")
    same = forge(gitlab).upsert_comment(MARKER, f"{MARKER}\nv1")
    second = forge(gitlab).upsert_comment(MARKER, f"{MARKER}\nv2")
    assert (first.action, same.action, second.action) == ("created", "unchanged", "updated")
    assert first.id == second.id and first.url.endswith(f"/group/project/-/merge_requests/7#note_{first.id}")
    mine = [n for n in gitlab.notes_on(7) if n["username"] == "project_42_bot_1" and not n["system"]]
    assert [n["body"] for n in mine] == [f"{MARKER}\nv2"]
    assert len(gitlab.notes_on(7)) == 132
    lists = gitlab.calls("notes.list")
    assert lists[0].query["per_page"] == ["100"] and {"1", "2"} <= {(c.query.get("page") or ["1"])[0] for c in lists}


def test_the_commit_status_is_set_once_per_state(gitlab: GitLabServer) -> None:
    forge(gitlab).set_status(MR_SHA, "failure", "accuracy fell", "https://ci/77", "mlops-bot/iris")
    forge(gitlab).set_status(MR_SHA, "failure", "accuracy fell", "https://ci/77", "mlops-bot/iris")  # GitLab: 400
    forge(gitlab).set_status(MR_SHA, "success", "fixed", "https://ci/78", "mlops-bot/iris")
    assert [(s["sha"], s["status"], s["name"]) for s in gitlab.statuses] == [
        (MR_SHA, "failed", "mlops-bot/iris"), (MR_SHA, "success", "mlops-bot/iris")]


@pytest.mark.slow  # honours Retry-After: 1
def test_rate_limits_and_server_errors_are_retried(gitlab: GitLabServer) -> None:
    gitlab.fail("notes.list", 429, "Too Many Requests", {"Retry-After": "1"})
    gitlab.fail("notes.create", 502, "Bad Gateway")
    assert forge(gitlab).upsert_comment(MARKER, f"{MARKER}\nx").action == "created"
    limited, retried = gitlab.calls("notes.list")
    assert (limited.status, retried.status) == (429, 200) and retried.at - limited.at >= 0.9
    assert [c.status for c in gitlab.calls("notes.create")] == [502, 201]


def test_retries_are_bounded(gitlab: GitLabServer) -> None:
    gitlab.fail("statuses.create", 503, "unavailable", times=20)
    with pytest.raises(RemoteError, match=r"HTTP 503 .*kept failing"):
        forge(gitlab, max_retries=2).set_status(MR_SHA, "success", "ok")
    assert len(gitlab.calls("statuses.create")) == 3


def test_a_job_token_is_denied_writes(gitlab: GitLabServer) -> None:
    gitlab.add_account("job-token-123", "alice", job_token=True)
    with pytest.raises(PermissionDenied, match="CI_JOB_TOKEN cannot post notes"):
        forge(gitlab, token="job-token-123", job_token=True, login="alice").upsert_comment(MARKER, "x")
    with pytest.raises(PermissionDenied):
        forge(gitlab, token="job-token-123", job_token=True).set_status(MR_SHA, "success", "ok")


def test_expired_token_and_deleted_merge_request(gitlab: GitLabServer) -> None:
    with pytest.raises(NotFound, match="could not list the notes of !8"):
        forge(gitlab, iid=8).upsert_comment(MARKER, "x")
    gitlab.add_account("expired", "x", expired=True)
    with pytest.raises(AuthError, match=r"HTTP 401 .*the token is expired") as caught:
        forge(gitlab, token="expired").set_status(MR_SHA, "success", "ok")
    assert "expired" not in caught.value.url


def test_merge_requests_and_pipelines(gitlab: GitLabServer) -> None:
    assert forge(gitlab).pull_request_head(7) == MR_SHA
    first = forge(gitlab).open_pull_request("deploy/v4", "main", "Deploy v4", "body")
    assert forge(gitlab).open_pull_request("deploy/v4", "main", "Deploy v4", "body") == first
    assert forge(gitlab).trigger_pipeline("main", {"MLOPS_FLOW": "promote"}).endswith("/-/pipelines/" +
                                                                                       str(gitlab.pipelines[0]["id"]))
    assert gitlab.pipelines[0]["variables"] == [{"key": "MLOPS_FLOW", "value": "promote"}]
    gitlab.add_account("job-token-123", "alice", job_token=True)
    forge(gitlab, token="job-token-123", job_token=True).trigger_pipeline("main", {"A": "1"})
    assert gitlab.pipelines[1]["source"] == "trigger" and gitlab.pipelines[1]["token"] == "job-token-123"


# the note remembered in the bot's earlier status (issue #17)

PREVIOUS = "e" * 40
LABEL = "mlops-bot/iris-classifier"


def remember(gitlab: GitLabServer, note_id: int, iid: int = 7) -> StatusRef:
    """An MR pushed twice: the earlier head carries a status naming `note_id`."""
    gitlab.add_merge_request(7, sha=PREVIOUS)
    gitlab.push(7, MR_SHA)
    gitlab.add_status(PREVIOUS, LABEL, f"{gitlab.url}/group/project/-/merge_requests/{iid}#note_{note_id}")
    return StatusRef(LABEL, MR_SHA)


def test_the_remembered_note_is_edited_without_reading_the_notes(gitlab: GitLabServer) -> None:
    own = gitlab.add_note(7, f"{MARKER}\nold", "project_42_bot_1")
    result = forge(gitlab).upsert_comment(MARKER, f"{MARKER}\nnew", remembered=remember(gitlab, own))
    assert (result.action, result.id) == ("updated", str(own)) and gitlab.notes[own]["body"] == f"{MARKER}\nnew"
    assert gitlab.calls("notes.list") == []
    assert [c.query.get("name") for c in gitlab.calls("statuses.list")] == [[LABEL]]
    assert gitlab.calls("statuses.list")[0].path.endswith(f"/commits/{PREVIOUS}/statuses")


def test_a_deleted_remembered_note_is_created_anew(gitlab: GitLabServer) -> None:
    own = gitlab.add_note(7, f"{MARKER}\nold", "project_42_bot_1")
    ref = remember(gitlab, own)
    del gitlab.notes[own]
    result = forge(gitlab).upsert_comment(MARKER, f"{MARKER}\nnew", remembered=ref)
    assert result.action == "created" and [n["body"] for n in gitlab.notes_on(7)] == [f"{MARKER}\nnew"]
    assert [c.status for c in gitlab.calls("notes.get")] == [404] and len(gitlab.calls("notes.list")) == 1


@pytest.mark.parametrize("whose", ["someone else's", "another MR's", "another MR's, named as this MR's"])
def test_a_status_naming_a_note_that_is_not_the_bots_report_here_leaves_it_untouched(
        gitlab: GitLabServer, whose: str) -> None:
    gitlab.add_merge_request(8, source="other")
    if whose == "someone else's":
        decoy = gitlab.add_note(7, f"{MARKER}\nmallory's", "mallory")
        ref = remember(gitlab, decoy)
    else:
        decoy = gitlab.add_note(8, f"{MARKER}\nthe report on !8", "project_42_bot_1")
        ref = remember(gitlab, decoy, iid=8 if whose == "another MR's" else 7)
    decoy_body = gitlab.notes[decoy]["body"]
    own = gitlab.add_note(7, f"{MARKER}\nold", "project_42_bot_1")
    result = forge(gitlab).upsert_comment(MARKER, f"{MARKER}\nnew", remembered=ref)
    assert (result.action, result.id) == ("updated", str(own))
    assert gitlab.notes[decoy]["body"] == decoy_body and len(gitlab.calls("notes.update")) == 1


def test_no_status_falls_back_on_the_scan(gitlab: GitLabServer) -> None:
    for i in range(120):
        gitlab.add_note(7, f"note {i}", "dev")
    own = gitlab.add_note(7, f"{MARKER}\nold", "project_42_bot_1")
    result = forge(gitlab).upsert_comment(MARKER, f"{MARKER}\nnew", remembered=StatusRef(LABEL, MR_SHA))
    assert (result.action, result.id) == ("updated", str(own))
    assert len(gitlab.calls("mrs.versions")) == 1 and len(gitlab.calls("statuses.list")) == 1
    assert len(gitlab.calls("notes.list")) == 2
