"""The GitLab adapter under faults, over real HTTP against the stand-in: what it retries, what
it never posts twice, and the one line each permanent error becomes."""

from __future__ import annotations

import time
from email.utils import formatdate
from typing import Any

import pytest

from reviewer.clock import Clock
from reviewer.config import load_settings
from reviewer.errors import DeadlineExceeded, GitLabError
from reviewer.gitlab import GitLab, Origins, origins, resolve_target
from reviewer.render import MARKER
from tests.conftest import TOKEN
from tests.gitlab_standin import FakeGitLab, Fault

FILE = {"old_path": "a.py", "new_path": "a.py", "diff": "@@ -1 +1 @@\n-x = 0\n+x = 1\n"}
SUMMARY = f"{MARKER}\n## Review\n\nAll good."
FAST = 0.01  # seconds: the backoff base here; test_faults.py runs the real one


@pytest.fixture
def mr(gitlab: FakeGitLab) -> dict[str, Any]:
    gitlab.add_user("reviewer-bot", TOKEN)
    created = gitlab.add_project("group/app")
    return gitlab.add_merge_request(created["id"], iid=7, title="change", files=[FILE])


def client(gitlab: FakeGitLab, token: str | None = TOKEN, **options: Any) -> GitLab:
    return GitLab(gitlab.url, token, timeout=5, backoff=FAST, **options)


def hits(gitlab: FakeGitLab, method: str, fragment: str) -> int:
    return sum(1 for r in gitlab.requests if r.method == method and fragment in r.path)


def bodies(gitlab: FakeGitLab, mr: dict[str, Any]) -> list[str]:
    return [n["body"] for n in gitlab.notes(mr["project_id"], 7)]


# --- reads: retried while they may pass --------------------------------------------------------

@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_a_read_that_fails_for_a_moment_is_retried(
        gitlab: FakeGitLab, mr: dict[str, Any], status: int) -> None:
    gitlab.faults.append(Fault("GET", "/diffs", status, times=2))
    changes = client(gitlab).fetch("group/app", 7).changes
    assert [c.new_path for c in changes] == ["a.py"]
    assert hits(gitlab, "GET", "/diffs") == 3


def test_a_reset_connection_is_retried(gitlab: FakeGitLab, mr: dict[str, Any]) -> None:
    gitlab.faults.append(Fault("GET", "/merge_requests/7", None, times=1))
    assert client(gitlab).fetch("group/app", 7).iid == 7


def test_retries_bound_the_attempts_and_the_message_counts_them(
        gitlab: FakeGitLab, mr: dict[str, Any]) -> None:
    gitlab.faults.append(Fault("GET", "/diffs", 503, times=-1))
    with pytest.raises(GitLabError) as caught:
        client(gitlab, retries=2).fetch("group/app", 7)
    assert hits(gitlab, "GET", "/diffs") == 3  # --retries 2: three attempts, no more
    assert str(caught.value) == ("cannot read the diff of merge request !7: GitLab answered "
                                 "503 3 times: 503 injected fault; try again later, or raise "
                                 "--retries")


def test_no_library_retries_under_the_policy(gitlab: FakeGitLab, mr: dict[str, Any]) -> None:
    # python-gitlab would sleep and retry a 429 ten times, urllib3 a 5xx as configured, and
    # python-gitlab a reset with retry_transient_errors: with --retries 0 each is asked once.
    gitlab.faults += [Fault("GET", "/diffs", 429, times=-1),
                      Fault("GET", "/versions", 503, times=-1),
                      Fault("GET", "/merge_requests/7", None, times=-1)]
    for fault in ("/diffs", "/versions", "/merge_requests/7"):
        gitlab.faults.sort(key=lambda f: f.fragment != fault)  # this fault first
        with pytest.raises(GitLabError):
            client(gitlab, retries=0).fetch("group/app", 7)
    assert hits(gitlab, "GET", "/merge_requests/7") == 3  # one request per run, no retry


def test_retry_after_is_honoured(gitlab: FakeGitLab, mr: dict[str, Any]) -> None:
    gitlab.faults.append(Fault("GET", "/diffs", 429, {"Retry-After": "1"}))
    client(gitlab).fetch("group/app", 7)
    first, second = (r.at for r in gitlab.requests if r.path.endswith("/diffs"))
    assert second - first >= 1.0


def test_retry_after_as_an_http_date_is_honoured(gitlab: FakeGitLab, mr: dict[str, Any]) -> None:
    when = formatdate(time.time() + 2, usegmt=True)  # whole seconds: 1-2 s from now
    gitlab.faults.append(Fault("GET", "/diffs", 503, {"Retry-After": when}))
    client(gitlab).fetch("group/app", 7)
    first, second = (r.at for r in gitlab.requests if r.path.endswith("/diffs"))
    assert second - first >= 0.9


def test_a_wait_past_the_deadline_stops_the_run_at_once(
        gitlab: FakeGitLab, mr: dict[str, Any]) -> None:
    gitlab.faults.append(Fault("GET", "/diffs", 429, {"Retry-After": "30"}))
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded, match=r"^--deadline 5s reached: could not read the "
                                               r"diff of merge request !7 \(last try: HTTP 429"):
        client(gitlab, clock=Clock(5.0, time.monotonic())).fetch("group/app", 7)
    assert time.monotonic() - started < 2


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_a_permanent_error_is_never_retried(
        gitlab: FakeGitLab, mr: dict[str, Any], status: int) -> None:
    gitlab.failures.append(("GET", "/versions", status))
    with pytest.raises(GitLabError):
        client(gitlab).fetch("group/app", 7)
    assert hits(gitlab, "GET", "/versions") == 1


# --- writes: never twice -----------------------------------------------------------------------

@pytest.mark.parametrize("fault", [
    Fault("POST", "/discussions", None, served=True),  # stored, then the connection dropped
    Fault("POST", "/discussions", 502, served=True),  # stored, then a proxy's 502
    Fault("POST", "/discussions", 504, served=True),  # stored, then a gateway time-out
], ids=["lost", "502-after-storing", "504-after-storing"])
def test_a_post_whose_answer_was_lost_is_found_not_sent_again(
        gitlab: FakeGitLab, mr: dict[str, Any], fault: Fault) -> None:
    gitlab.faults.append(fault)
    note = client(gitlab).create_discussion(mr["project_id"], 7, SUMMARY)
    assert bodies(gitlab, mr) == [SUMMARY]
    assert hits(gitlab, "POST", "/discussions") == 1
    assert note.body == SUMMARY and note.note_id == gitlab.notes(mr["project_id"], 7)[0]["id"]


@pytest.mark.parametrize("fault", [
    Fault("POST", "/discussions", None),  # reset before GitLab read it
    Fault("POST", "/discussions", 429, {"Retry-After": "0"}),
    Fault("POST", "/discussions", 503),
], ids=["reset", "429", "503"])
def test_a_post_gitlab_did_not_store_is_sent_again_once(
        gitlab: FakeGitLab, mr: dict[str, Any], fault: Fault) -> None:
    gitlab.faults.append(fault)
    client(gitlab).create_discussion(mr["project_id"], 7, SUMMARY)
    assert bodies(gitlab, mr) == [SUMMARY]
    assert hits(gitlab, "POST", "/discussions") == 2


def test_a_lost_post_is_not_matched_to_another_users_note(
        gitlab: FakeGitLab, mr: dict[str, Any]) -> None:
    gitlab.add_discussion(mr["project_id"], 7, SUMMARY, "someone-else")
    gitlab.faults.append(Fault("POST", "/discussions", 503))
    client(gitlab).create_discussion(mr["project_id"], 7, SUMMARY)
    authors = [n["author"]["username"] for n in gitlab.notes(mr["project_id"], 7)]
    assert authors == ["someone-else", "reviewer-bot"]


def test_a_lost_reply_is_found_not_sent_again(gitlab: FakeGitLab, mr: dict[str, Any]) -> None:
    gl = client(gitlab)
    thread = gl.create_discussion(mr["project_id"], 7, "<!-- reviewer:finding abc -->\nA finding")
    gitlab.faults.append(Fault("POST", "/notes", None, served=True))
    gl.reply_and_resolve(mr["project_id"], 7, thread.discussion_id, "No longer reported.")
    [discussion] = gitlab.discussions(mr["project_id"], 7)
    assert [n["body"] for n in discussion["notes"]][1:] == ["No longer reported."]
    assert discussion["notes"][0]["resolved"]


def test_an_edit_is_retried_like_a_read(gitlab: FakeGitLab, mr: dict[str, Any]) -> None:
    gl = client(gitlab)
    note = gl.create_discussion(mr["project_id"], 7, SUMMARY)
    gitlab.faults.append(Fault("PUT", "/notes/", None, served=True))
    gl.update_note(mr["project_id"], 7, note.note_id, SUMMARY + " Edited.")
    assert bodies(gitlab, mr) == [SUMMARY + " Edited."]
    assert hits(gitlab, "PUT", "/notes/") == 2


# --- permanent errors: one line naming what to check -------------------------------------------

def test_401_names_the_variable_the_token_came_from(gitlab: FakeGitLab, mr: dict[str, Any]
                                                    ) -> None:
    gl = client(gitlab, token="glpat-wrong-0000", origins=Origins(token="GITLAB_TOKEN"))
    with pytest.raises(GitLabError) as caught:
        gl.fetch("group/app", 7)
    assert str(caught.value).startswith("GitLab rejected the token from GITLAB_TOKEN while "
                                        "trying to read project group/app (401): it is invalid, "
                                        "expired or revoked")
    assert "glpat-wrong-0000" not in str(caught.value)


def test_403_names_the_scope_the_role_and_the_job_token(
        gitlab: FakeGitLab, mr: dict[str, Any]) -> None:
    gitlab.failures.append(("POST", "/discussions", 403))
    with pytest.raises(GitLabError) as caught:
        client(gitlab).create_discussion(mr["project_id"], 7, SUMMARY)
    message = str(caught.value)
    assert message.startswith("the token may not post on merge request !7 (403)")
    assert "api scope" in message and "Developer role" in message and "CI_JOB_TOKEN" in message
    assert message.endswith("(the token came from REVIEWER_GITLAB_TOKEN)")


def test_404_on_the_project_names_the_id_and_where_it_came_from(
        gitlab: FakeGitLab, mr: dict[str, Any]) -> None:
    gl = client(gitlab, origins=Origins(project="CI_MERGE_REQUEST_PROJECT_ID"))
    with pytest.raises(GitLabError) as caught:
        gl.fetch("group/missing", 7)
    assert str(caught.value).startswith("GitLab has no project 'group/missing' that this token "
                                        "can see (404; the project came from "
                                        "CI_MERGE_REQUEST_PROJECT_ID)")
    assert hits(gitlab, "GET", "/projects/group%2Fmissing") == 1


def test_404_on_the_merge_request_names_the_iid_and_where_it_came_from(
        gitlab: FakeGitLab, mr: dict[str, Any]) -> None:
    gl = client(gitlab, origins=Origins(mr="REVIEWER_MR_IID"))
    with pytest.raises(GitLabError) as caught:
        gl.fetch("group/app", 999)
    assert str(caught.value).startswith("project group/app has no merge request !999 (404; the "
                                        "iid came from REVIEWER_MR_IID): use the number in the "
                                        "merge request's URL")


def test_unreachable_gitlab_names_its_url(gitlab: FakeGitLab, mr: dict[str, Any]) -> None:
    gitlab.stop()
    with pytest.raises(GitLabError, match=rf"^cannot reach GitLab at {gitlab.url} to read "
                                          "project group/app: ConnectionError"):
        client(gitlab, retries=0).fetch("group/app", 7)


def test_origins_follow_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("REVIEWER_PROJECT", "REVIEWER_MR_IID", "GITLAB_TOKEN", "REVIEWER_GITLAB_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CI_SERVER_URL", "https://gitlab.example.com")
    monkeypatch.setenv("CI_MERGE_REQUEST_PROJECT_ID", "42")
    monkeypatch.setenv("CI_MERGE_REQUEST_IID", "7")
    monkeypatch.setenv("GITLAB_TOKEN", "glpat-abc")
    settings = load_settings({})
    assert origins(settings, resolve_target(settings)) == Origins(
        "GITLAB_TOKEN", "CI_MERGE_REQUEST_PROJECT_ID", "CI_MERGE_REQUEST_IID")
    flags = load_settings({"project": "group/app", "mr": 3})
    assert origins(flags, resolve_target(flags)) == Origins("GITLAB_TOKEN", "--project", "--mr")
    url = load_settings({"mr_url": "https://gitlab.example.com/g/a/-/merge_requests/5"})
    assert origins(url, resolve_target(url)) == Origins("GITLAB_TOKEN", "--mr-url", "--mr-url")
