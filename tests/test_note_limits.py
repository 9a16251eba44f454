"""GitLab refuses a note over 1,000,000 characters: every note we post stays well under it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests

from reviewer.render import MARKER
from tests.conftest import API_KEY, TOKEN, answer, clean_env, finding, run_cli
from tests.gitlab_standin import FakeGitLab
from tests.openai_standin import FakeOpenAI


def many_files(count: int) -> list[dict[str, Any]]:
    return [{"old_path": f"src/pkg_{i}/mod_{i}.py", "new_path": f"src/pkg_{i}/mod_{i}.py",
             "new_file": True, "diff": f"@@ -0,0 +1,2 @@\n+def f{i}(x):\n+    return x + {i}\n"}
            for i in range(count)]


def long_findings(body: dict[str, Any]) -> str:
    """Twelve long findings on every file the request shows."""
    text = body["messages"][-1]["content"]
    paths = [line.split("File: ")[1].split(" (")[0] for line in text.splitlines()
             if line.startswith("File: ")]
    return answer(score=60, findings=[
        finding(p, 1 + n % 2, "major" if n % 3 else "minor", title=f"Problem {n} " + "t" * 200,
                message="Explain. " * 1500, suggestion="x = 1\n" * 500)
        for p in paths for n in range(12)][:12])


def test_a_400_file_review_with_many_long_findings_posts_notes_gitlab_accepts(
        gitlab: FakeGitLab, llm: FakeOpenAI, tmp_path: Path) -> None:
    gitlab.add_user("reviewer-bot", TOKEN)
    project = gitlab.add_project("group/app")
    mr = gitlab.add_merge_request(project["id"], iid=7, title="Big", files=many_files(400))
    llm.responder = long_findings
    env = clean_env(
        CI="true", CI_SERVER_URL=gitlab.url, CI_PIPELINE_SOURCE="merge_request_event",
        CI_MERGE_REQUEST_PROJECT_ID=str(mr["project_id"]), CI_MERGE_REQUEST_IID="7",
        CI_JOB_URL=f"{gitlab.url}/group/app/-/jobs/42", REVIEWER_GITLAB_TOKEN=TOKEN,
        REVIEWER_BASE_URL=llm.url, REVIEWER_MODEL="test-model", REVIEWER_API_KEY=API_KEY,
        REVIEWER_OUTPUT="review.json", REVIEWER_MAX_INPUT_TOKENS="2000")

    for _ in range(2):  # a re-run edits the same summary, and must fit as well
        result = run_cli("review", env=env, cwd=tmp_path, timeout=300)
        assert result.code == 0, result.stderr

    notes = [n["body"] for n in gitlab.notes(project["id"], 7)]
    summary = next(n for n in notes if n.startswith(MARKER))
    assert len((tmp_path / "review.json").read_text()) > 1_000_000  # the whole review is big
    assert max(len(n) for n in notes) < 500_000
    assert "left out here. The whole review is in [review.json](" \
           f"{gitlab.url}/group/app/-/jobs/42/artifacts/file/review.json)" in summary
    assert sum(1 for n in notes if n.startswith(MARKER)) == 1


def test_the_stand_in_refuses_a_note_over_gitlabs_limit_as_gitlab_does(
        gitlab: FakeGitLab) -> None:
    gitlab.add_user("reviewer-bot", TOKEN)
    project = gitlab.add_project("group/app")
    gitlab.add_merge_request(project["id"], iid=7, title="x", files=many_files(1))
    url = f"{gitlab.url}/api/v4/projects/{project['id']}/merge_requests/7/discussions"

    refused = requests.post(url, headers={"PRIVATE-TOKEN": TOKEN},
                            json={"body": "x" * 1_000_001}, timeout=10)
    accepted = requests.post(url, headers={"PRIVATE-TOKEN": TOKEN},
                             json={"body": "x" * 1_000_000}, timeout=10)

    assert refused.status_code == 400
    assert refused.json() == {"message": 'Note {:note=>["is too long (maximum is 1000000 '
                                         'characters)"]}'}
    assert accepted.status_code == 201


@pytest.mark.parametrize("field", ["title", "message", "suggestion"])
def test_one_huge_model_text_cannot_make_an_inline_note_too_long(
        gitlab: FakeGitLab, llm: FakeOpenAI, tmp_path: Path, field: str) -> None:
    gitlab.add_user("reviewer-bot", TOKEN)
    project = gitlab.add_project("group/app")
    mr = gitlab.add_merge_request(project["id"], iid=7, title="x", files=many_files(1))
    llm.queue(answer(findings=[finding("src/pkg_0/mod_0.py", 1, **{field: "y" * 1_200_000})]))
    env = clean_env(
        CI_SERVER_URL=gitlab.url, CI_MERGE_REQUEST_PROJECT_ID=str(mr["project_id"]),
        CI_MERGE_REQUEST_IID="7", REVIEWER_GITLAB_TOKEN=TOKEN, REVIEWER_BASE_URL=llm.url,
        REVIEWER_MODEL="test-model", REVIEWER_API_KEY=API_KEY,
        REVIEWER_OUTPUT=str(tmp_path / "r.json"))

    result = run_cli("review", env=env)

    assert result.code == 0, result.stderr
    notes = [n["body"] for n in gitlab.notes(project["id"], 7)]
    assert len(notes) == 2  # the inline thread and the summary
    assert max(len(n) for n in notes) < 500_000
