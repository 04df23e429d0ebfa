"""The GitLab adapter's governance reads against the local GitLab server: roles from access levels, the merge
request of a note (forks, states), its approvals, and replies."""

from __future__ import annotations

import pytest

from mlops_bot.errors import NotFound
from mlops_bot.forges.base import Approver, Discussion, PermissionDenied, WrittenComment
from mlops_bot.forges.gitlab import GitLabForge, GitLabSettings
from tests.helpers.ci_env import GITLAB_TOKEN, MR_SHA
from tests.servers.gitlab_server import GitLabServer


def forge(server: GitLabServer, token: str = GITLAB_TOKEN) -> GitLabForge:
    settings = GitLabSettings(server_url=server.url, project="42", project_path="group/project", mr_iid=7)
    return GitLabForge(settings, token)


def test_access_levels_map_onto_roles(gitlab: GitLabServer) -> None:
    for name, role in [("min", "minimal access"), ("gus", "guest"), ("pla", "planner"), ("rep", "reporter"),
                       ("dev", "developer"), ("mai", "maintainer"), ("own", "owner")]:
        gitlab.add_member(name, role)
    gitlab.user_id("outsider")  # a user of the instance, no member of the project
    gl = forge(gitlab)
    roles = {name: gl.role_of(name) for name in ("min", "gus", "pla", "rep", "dev", "mai", "own", "outsider",
                                                  "ghost", "MAI")}
    assert roles == {"min": "none", "gus": "read", "pla": "read", "rep": "triage", "dev": "write",
                     "mai": "maintain", "own": "admin", "outsider": "none", "ghost": "none", "MAI": "maintain"}
    assert [c.status for c in gitlab.calls("members.all_get")].count(404) == 1  # the outsider; ghost asks nothing
    assert all(c.query["username"] for c in gitlab.calls("users.list"))


def test_a_merge_request_its_fork_and_its_states(gitlab: GitLabServer) -> None:
    gitlab.add_merge_request(8, source="patch", sha="e" * 40, author="mallory", source_project_id=99)
    gl = forge(gitlab)
    assert gl.discussion(7) == Discussion(7, True, "open", False, MR_SHA, "alice",
                                          f"{gitlab.origin}/group/project/-/merge_requests/7", head_ref="feature")
    fork = gl.discussion(8)
    assert (fork.from_fork, fork.author, fork.head_sha, fork.head_ref) == (True, "mallory", "e" * 40, "patch")
    for state, expected in [("closed", "closed"), ("locked", "closed"), ("merged", "merged"), ("opened", "open")]:
        gitlab.set_state(8, state)
        assert gl.discussion(8).state == expected
    with pytest.raises(NotFound, match="!12"):
        gl.discussion(12)


def test_approvals_are_the_merge_requests_approved_by(gitlab: GitLabServer) -> None:
    gl = forge(gitlab)
    assert gl.approvers(7) == []
    gitlab.approve(7, "mai")
    gitlab.approve(7, "dev")
    gitlab.approve(7, "own")
    gitlab.unapprove(7, "dev")  # withdrawn
    url = f"{gitlab.origin}/group/project/-/merge_requests/7"
    assert gl.approvers(7) == [Approver("mai", url), Approver("own", url)]
    assert gl.environment_approvers("77", "production") == []  # a Premium feature of another shape
    with pytest.raises(NotFound):
        gl.approvers(12)


def test_replies_are_new_notes(gitlab: GitLabServer) -> None:
    gl = forge(gitlab)
    first, second = gl.reply(7, "promoted"), gl.reply(7, "promoted")
    assert (first.action, second.action) == ("created", "created") and first.id != second.id
    assert [n["body"] for n in gitlab.notes_on(7)] == ["promoted", "promoted"]
    assert first.url == f"{gitlab.origin}/group/project/-/merge_requests/7#note_{first.id}"
    with pytest.raises(NotFound):
        gl.reply(12, "nobody here")



def test_a_note_is_read_by_its_web_address_in_this_project_only(gitlab: GitLabServer) -> None:
    gitlab.add_merge_request(8)
    note = gitlab.add_note(7, "/mlops-bot approve v2 production", "mai")
    system = gitlab.add_note(7, "approved this merge request", "mai", system=True)
    gl = forge(gitlab)
    page = f"{gitlab.origin}/group/project"
    written = WrittenComment("mai", "/mlops-bot approve v2 production", edited=False)
    assert gl.comment_by_url(f"{page}/-/merge_requests/7#note_{note}") == written
    assert gl.comment_by_url(f"{page}/merge_requests/7#note_{note}") == written  # GitLab's older links
    gitlab.edit_note(note, "/mlops-bot approve v9 production")
    assert gl.comment_by_url(f"{page}/-/merge_requests/7#note_{note}") == WrittenComment(
        "mai", "/mlops-bot approve v9 production", edited=True)
    assert len(gitlab.calls("notes.get")) == 3
    for url in (f"{gitlab.origin}/other/project/-/merge_requests/7#note_{note}",
                f"https://gitlab.com/group/project/-/merge_requests/7#note_{note}",
                f"{page}/-/issues/7#note_{note}", f"{page}/-/merge_requests/7", ""):
        assert gl.comment_by_url(url) is None, url
    assert len(gitlab.calls("notes.get")) == 3  # none of those was asked
    # gone, on another merge request than the address says, or GitLab's own system note
    for url in (f"{page}/-/merge_requests/7#note_99999", f"{page}/-/merge_requests/8#note_{note}",
                f"{page}/-/merge_requests/7#note_{system}"):
        assert gl.comment_by_url(url) is None, url
    assert [c.status for c in gitlab.calls("notes.get")][3:] == [404, 404, 200]


def test_a_job_token_may_not_reply(gitlab: GitLabServer) -> None:
    gitlab.add_account("job-123", "alice", job_token=True)
    settings = GitLabSettings(server_url=gitlab.url, project="42", project_path="group/project", mr_iid=7)
    with pytest.raises(PermissionDenied):
        GitLabForge(settings, "job-123", job_token=True).reply(7, "hello")
