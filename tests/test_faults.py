"""The fault matrix: `reviewer review` through the real CLI against stand-ins that fail.

Each fault passes (GitLab or the model recovers after a failure or two) or stays; each case
checks the outcome, the exit code, the one-line message, the time it took against --timeout
and --deadline, and that nothing was posted twice. Waits are the real ones (backoff base 1 s,
Retry-After: 1), kept short with --retries 1.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from reviewer.model import Review
from reviewer.render import MARKER
from tests.conftest import API_KEY, TOKEN, Result, answer, clean_env, finding, run_cli
from tests.gitlab_standin import FakeGitLab, Fault
from tests.openai_standin import FakeOpenAI, Reply

DIFF = "@@ -1,2 +1,3 @@\n import os\n-x = 0\n+x = 1\n+y = os.system(x)\n"
FILES = [{"old_path": "app.py", "new_path": "app.py", "diff": DIFF}]
FINDING = finding("app.py", 3, "major", title="Shell call", message="x reaches a shell.")
# Seconds from a run's last request to its exit (rendering, writing, the interpreter's end):
# about 0.5 here; timings are measured from the requests the stand-ins saw, not from the start
# of the process, whose imports take a second or more.
EXIT = 1.5


@pytest.fixture
def mr(gitlab: FakeGitLab) -> dict[str, Any]:
    gitlab.add_user("reviewer-bot", TOKEN)
    project = gitlab.add_project("group/app")
    return gitlab.add_merge_request(project["id"], iid=7, title="Call a shell", files=FILES)


@dataclass(frozen=True)
class Span:
    """When a run started and ended (time.monotonic(), as the stand-ins record requests)."""

    started: float
    ended: float


def review(gitlab: FakeGitLab, llm: FakeOpenAI, mr: dict[str, Any], tmp_path: Path,
           *flags: str, **variables: str) -> tuple[Result, Span]:
    """A merge request pipeline's run (with variables added), and when it started and ended."""
    env = clean_env(**{
        "CI": "true", "CI_SERVER_URL": gitlab.url, "CI_PIPELINE_SOURCE": "merge_request_event",
        "CI_MERGE_REQUEST_PROJECT_ID": str(mr["project_id"]), "CI_MERGE_REQUEST_IID": "7",
        "REVIEWER_GITLAB_TOKEN": TOKEN, "REVIEWER_BASE_URL": llm.url,
        "REVIEWER_MODEL": "test-model", "REVIEWER_API_KEY": API_KEY,
        "REVIEWER_OUTPUT": str(tmp_path / "review.json"),
        "REVIEWER_QUIET": "true"} | variables)  # the requests' log lines: tests/test_progress.py
    started = time.monotonic()
    result = run_cli("review", *flags, env=env)
    return result, Span(started, time.monotonic())


def notes(gitlab: FakeGitLab, mr: dict[str, Any]) -> list[str]:
    return [n["body"] for n in gitlab.notes(mr["project_id"], 7)]


def posted_once(gitlab: FakeGitLab, mr: dict[str, Any]) -> None:
    """One summary and one inline note, each once."""
    bodies = notes(gitlab, mr)
    assert len(bodies) == len(set(bodies)) == 2, bodies
    assert sum(b.startswith(MARKER) for b in bodies) == 1


def nothing_posted(gitlab: FakeGitLab) -> None:
    assert [r for r in gitlab.requests if r.method != "GET"] == []


def arrivals(gitlab: FakeGitLab, method: str, fragment: str) -> list[float]:
    return [r.at for r in gitlab.requests if r.method == method and fragment in r.path]


def host(llm: FakeOpenAI) -> str:
    return llm.url.split("//")[1].split("/")[0]


def one_error_line(result: Result) -> str:
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
    return result.stderr


# --- GitLab faults -----------------------------------------------------------------------------

def test_gitlab_429_with_retry_after_is_waited_out(
        gitlab: FakeGitLab, llm: FakeOpenAI, mr: dict[str, Any], tmp_path: Path) -> None:
    gitlab.faults.append(Fault("GET", "/diffs", 429, {"Retry-After": "1"}))
    llm.queue(answer(findings=[FINDING]))
    result, _ = review(gitlab, llm, mr, tmp_path, "--retries", "1")
    assert result.code == 0, result.stderr
    first, second = arrivals(gitlab, "GET", "/diffs")
    assert second - first >= 1.0
    posted_once(gitlab, mr)


# Every 5xx on both sides is in test_gitlab_errors.py and test_llm_errors.py; here each status
# once, on one side or the other, to keep the matrix quick.
@pytest.mark.parametrize("status", [500, 502])
def test_gitlab_5xx_that_passes_is_retried(gitlab: FakeGitLab, llm: FakeOpenAI,
                                           mr: dict[str, Any], tmp_path: Path,
                                           status: int) -> None:
    gitlab.faults.append(Fault("GET", "/versions", status))
    llm.queue(answer(findings=[FINDING]))
    result, _ = review(gitlab, llm, mr, tmp_path, "--retries", "1")
    assert result.code == 0, result.stderr
    assert len(arrivals(gitlab, "GET", "/versions")) == 2
    posted_once(gitlab, mr)


def test_gitlab_reset_twice_then_answering_is_retried(
        gitlab: FakeGitLab, llm: FakeOpenAI, mr: dict[str, Any], tmp_path: Path) -> None:
    gitlab.faults.append(Fault("GET", "/merge_requests/7", None, times=2))
    llm.queue(answer(findings=[FINDING]))
    result, _ = review(gitlab, llm, mr, tmp_path, "--retries", "2")
    assert result.code == 0, result.stderr
    posted_once(gitlab, mr)


def test_gitlab_5xx_that_stays_fails_after_retries_plus_one_attempts(
        gitlab: FakeGitLab, llm: FakeOpenAI, mr: dict[str, Any], tmp_path: Path) -> None:
    gitlab.faults.append(Fault("GET", "/versions", 503, times=-1))
    result, span = review(gitlab, llm, mr, tmp_path, "--retries", "1")
    assert result.code == 1
    assert one_error_line(result) == (
        "reviewer: error: cannot read merge request !7 of 1: GitLab answered 503 2 times: 503 "
        "injected fault; try again later, or raise --retries\n")
    first, second = arrivals(gitlab, "GET", "/versions")
    assert 0.5 <= second - first < 1.5  # one backoff: 0.5-1 s
    assert span.ended - second < EXIT
    assert llm.requests == []
    nothing_posted(gitlab)


def test_gitlab_retry_after_past_the_deadline_stops_at_once(
        gitlab: FakeGitLab, llm: FakeOpenAI, mr: dict[str, Any], tmp_path: Path) -> None:
    gitlab.faults.append(Fault("GET", "/versions", 429, {"Retry-After": "60"}))
    result, span = review(gitlab, llm, mr, tmp_path, "--deadline", "20")
    assert result.code == 1
    assert one_error_line(result).startswith(
        "reviewer: error: --deadline 20s reached: could not read merge request !7 of 1 "
        "(last try: HTTP 429)")
    [asked] = arrivals(gitlab, "GET", "/versions")
    assert span.ended - asked < EXIT  # it did not sleep towards the deadline
    nothing_posted(gitlab)


@pytest.mark.parametrize(("status", "says"), [
    (401, "GitLab rejected the token from REVIEWER_GITLAB_TOKEN"),
    (403, "the token may not read merge request !7 of 1 (403)"),
    (404, "project group/app has no merge request !7 (404; the iid came from "
          "CI_MERGE_REQUEST_IID)"),
])
def test_gitlab_permanent_errors_are_asked_once_and_named(
        gitlab: FakeGitLab, llm: FakeOpenAI, mr: dict[str, Any], tmp_path: Path,
        status: int, says: str) -> None:
    gitlab.failures.append(("GET", "/merge_requests/7", status))
    result, _ = review(gitlab, llm, mr, tmp_path)
    assert result.code == 1
    assert one_error_line(result).startswith(f"reviewer: error: {says}")
    assert len(arrivals(gitlab, "GET", "/merge_requests/7")) == 1
    nothing_posted(gitlab)


@pytest.mark.parametrize("fault", [
    Fault("POST", "/discussions", None, served=True),
    Fault("POST", "/discussions", 502, served=True),
], ids=["answer-lost", "502-after-storing"])
def test_gitlab_post_stored_but_answer_lost_is_not_posted_twice(
        gitlab: FakeGitLab, llm: FakeOpenAI, mr: dict[str, Any], tmp_path: Path,
        fault: Fault) -> None:
    gitlab.faults.append(fault)  # the first POST: the inline note
    llm.queue(answer(findings=[FINDING]))
    result, _ = review(gitlab, llm, mr, tmp_path, "--retries", "1")
    assert result.code == 0, result.stderr
    posted_once(gitlab, mr)
    assert len(arrivals(gitlab, "POST", "/discussions")) == 2  # the inline once, the summary


def test_gitlab_post_reset_before_storing_is_sent_again(
        gitlab: FakeGitLab, llm: FakeOpenAI, mr: dict[str, Any], tmp_path: Path) -> None:
    gitlab.faults.append(Fault("POST", "/discussions", None))
    llm.queue(answer(findings=[FINDING]))
    result, _ = review(gitlab, llm, mr, tmp_path, "--retries", "1")
    assert result.code == 0, result.stderr
    posted_once(gitlab, mr)
    assert len(arrivals(gitlab, "POST", "/discussions")) == 3


def test_gitlab_post_that_keeps_failing_names_the_saved_review(
        gitlab: FakeGitLab, llm: FakeOpenAI, mr: dict[str, Any], tmp_path: Path) -> None:
    gitlab.faults.append(Fault("POST", "/discussions", 503, times=-1))
    llm.queue(answer(findings=[FINDING]))
    result, _ = review(gitlab, llm, mr, tmp_path, "--retries", "1", "--no-inline")
    assert result.code == 1
    assert one_error_line(result).endswith(
        f"GitLab answered 503 2 times: 503 injected fault; try again later, or raise --retries "
        f"(the review is saved in {tmp_path / 'review.json'})\n")
    assert len(arrivals(gitlab, "POST", "/discussions")) == 2
    assert notes(gitlab, mr) == []


# --- model faults ------------------------------------------------------------------------------

def test_model_429_with_retry_after_is_waited_out(
        gitlab: FakeGitLab, llm: FakeOpenAI, mr: dict[str, Any], tmp_path: Path) -> None:
    llm.queue(Reply(status=429, error="slow down", headers={"Retry-After": "1"}),
              answer(findings=[FINDING]))
    result, _ = review(gitlab, llm, mr, tmp_path, "--retries", "1")
    assert result.code == 0, result.stderr
    first, second = llm.arrivals
    assert second - first >= 1.0
    posted_once(gitlab, mr)


@pytest.mark.parametrize("status", [503, 504])
def test_model_5xx_that_passes_is_retried(gitlab: FakeGitLab, llm: FakeOpenAI,
                                          mr: dict[str, Any], tmp_path: Path,
                                          status: int) -> None:
    llm.queue(Reply(status=status, error="busy"), answer(findings=[FINDING]))
    result, _ = review(gitlab, llm, mr, tmp_path, "--retries", "1")
    assert result.code == 0, result.stderr
    assert len(llm.requests) == 2
    posted_once(gitlab, mr)


def test_model_reset_is_retried(gitlab: FakeGitLab, llm: FakeOpenAI, mr: dict[str, Any],
                                tmp_path: Path) -> None:
    llm.queue(Reply(drop=True), Reply(drop=True), answer(findings=[FINDING]))
    result, _ = review(gitlab, llm, mr, tmp_path, "--retries", "2")
    assert result.code == 0, result.stderr
    assert len(llm.requests) == 3
    posted_once(gitlab, mr)


def test_model_5xx_that_stays_fails_after_retries_plus_one_attempts(
        gitlab: FakeGitLab, llm: FakeOpenAI, mr: dict[str, Any], tmp_path: Path) -> None:
    llm.queue(*[Reply(status=503, error="overloaded")] * 5)
    result, span = review(gitlab, llm, mr, tmp_path, "--retries", "1")
    assert result.code == 1
    assert one_error_line(result) == (f"reviewer: error: model server at {host(llm)} failed with "
                                      "HTTP 503 (2 tries): overloaded\n")
    first, second = llm.arrivals
    assert 0.5 <= second - first < 1.5  # one backoff: 0.5-1 s
    assert span.ended - second < EXIT
    nothing_posted(gitlab)


def test_model_silent_fails_within_one_timeout_and_is_not_asked_again(
        gitlab: FakeGitLab, llm: FakeOpenAI, mr: dict[str, Any], tmp_path: Path) -> None:
    llm.queue(*[Reply(content=answer(), delay=30)] * 3)
    result, span = review(gitlab, llm, mr, tmp_path, "--timeout", "1")
    assert result.code == 1
    assert one_error_line(result) == (f"reviewer: error: model server at {host(llm)} did not "
                                      "answer within 1s: raise --timeout\n")
    [asked] = llm.arrivals  # the server may still be working on it: not sent again
    # The client's clock starts before the request arrives (connecting, sending): a little
    # under the timeout may pass between its arrival and the end of a process that exits fast.
    assert 1.0 - 0.1 <= span.ended - asked < 1.0 + EXIT
    nothing_posted(gitlab)


def test_model_slower_than_the_deadline_is_cut_at_the_deadline(
        gitlab: FakeGitLab, llm: FakeOpenAI, mr: dict[str, Any], tmp_path: Path) -> None:
    llm.queue(Reply(content=answer(), delay=30))
    result, span = review(gitlab, llm, mr, tmp_path, "--deadline", "3", "--timeout", "20")
    assert result.code == 1
    assert one_error_line(result).startswith("reviewer: error: --deadline 3s reached: could "
                                             "not get an answer from the model server")
    assert len(llm.requests) == 1
    assert 3.0 <= span.ended - span.started < 3.0 + EXIT  # the deadline counts from the start
    nothing_posted(gitlab)


@pytest.mark.parametrize(("status", "says"), [
    (401, "refused the API key (HTTP 401: no): check --api-key (REVIEWER_API_KEY)"),
    (403, "refused the API key (HTTP 403: no): check --api-key (REVIEWER_API_KEY)"),
    (404, "has no model 'test-model' (HTTP 404: no): check --model (REVIEWER_MODEL); it lists "
          "no models"),
    (400, "failed with HTTP 400: no"),
    (422, "failed with HTTP 422: no"),
])
def test_model_permanent_errors_are_asked_once_and_named(
        gitlab: FakeGitLab, llm: FakeOpenAI, mr: dict[str, Any], tmp_path: Path,
        status: int, says: str) -> None:
    llm.queue(Reply(status=status, error="no"))
    result, _ = review(gitlab, llm, mr, tmp_path)
    assert result.code == 1
    assert one_error_line(result).startswith(f"reviewer: error: model server at {host(llm)} "
                                             f"{says}")
    assert len(llm.requests) == 1
    nothing_posted(gitlab)


def test_model_unreachable_names_the_url_tried_and_the_jobs_own_localhost(
        gitlab: FakeGitLab, llm: FakeOpenAI, mr: dict[str, Any], tmp_path: Path) -> None:
    llm.stop()  # nothing listens there any more
    port = llm.url.split(":")[2].split("/")[0]
    base = f"http://reviewer:pa55-word@localhost:{port}/v1"
    result, _ = review(gitlab, llm, mr, tmp_path, "--retries", "1", REVIEWER_BASE_URL=base)
    assert result.code == 1
    line = one_error_line(result)
    assert line.startswith(f"reviewer: error: cannot reach the model server at "
                           f"http://localhost:{port}/v1 (")
    assert "localhost is the job's own container: use the model service's alias" in line
    assert line.endswith("(2 tries)\n")
    assert "pa55-word" not in result.stderr + result.stdout
    nothing_posted(gitlab)


def new_file(path: str, lines: int = 60) -> dict[str, Any]:
    body = "".join(f"+v{i} = {i}\n" for i in range(lines))
    return {"old_path": path, "new_path": path, "new_file": True,
            "diff": f"@@ -0,0 +1,{lines} @@\n{body}"}


def test_deadline_mid_review_posts_what_was_answered_and_exits_4(
        gitlab: FakeGitLab, llm: FakeOpenAI, tmp_path: Path) -> None:
    gitlab.add_user("reviewer-bot", TOKEN)
    project = gitlab.add_project("group/app")
    mr = gitlab.add_merge_request(project["id"], iid=7, title="Two files",
                                  files=[new_file("a.py", 300), new_file("b.py", 300)])
    # --max-input-tokens 4000: one request per file; the second one's answer never comes.
    llm.queue(answer(findings=[finding("a.py", 3, "minor")]),
              Reply(content=answer(), delay=30))
    # One request at a time, so the queued answers meet the files in order.
    result, span = review(gitlab, llm, mr, tmp_path, "--deadline", "5", "--timeout", "20",
                          "--max-input-tokens", "4000", "--concurrency", "1")
    assert result.code == 4, result.stderr
    assert "--deadline reached" in result.stderr
    assert len(llm.requests) == 2
    saved = Review.model_validate_json((tmp_path / "review.json").read_text())
    assert saved.files_reviewed == ["a.py"]
    assert [f.path for f in saved.coverage.not_reviewed] == ["b.py"]
    bodies = notes(gitlab, mr)
    assert len(bodies) == len(set(bodies)) == 2  # the summary and a.py's finding, once each
    assert span.ended - span.started < 5.0 + EXIT
