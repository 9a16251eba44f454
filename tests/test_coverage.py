"""A review that read less than everything says so: coverage, no score, exit 4, invented files.

Every case runs the real CLI against the GitLab and model stand-ins.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from reviewer.model import Review
from reviewer.render import MARKER
from tests.conftest import API_KEY, TOKEN, answer, clean_env, finding, run_cli
from tests.gitlab_standin import FakeGitLab
from tests.openai_standin import FakeOpenAI, Reply

SMALL = {"old_path": "app.py", "new_path": "app.py", "new_file": True,
         "diff": "@@ -0,0 +1,3 @@\n+import os\n+def run(cmd):\n+    return os.system(cmd)\n"}
CUT = {"old_path": "db/big.sql", "new_path": "db/big.sql", "diff": "", "too_large": True}
# What a reader is told of a file GitLab cut that this run may not fetch: the setting to change.
CUT_REASON = "too large for GitLab's diff limits: not read in full (--max-file-bytes 0)"
LOCK = {"old_path": "poetry.lock", "new_path": "poetry.lock", "diff": "@@ -1 +1 @@\n-a\n+b\n"}
LOGO = {"old_path": "logo.png", "new_path": "logo.png", "new_file": True,
        "diff": "Binary files /dev/null and b/logo.png differ\n"}


def open_mr(gitlab: FakeGitLab, files: list[dict[str, Any]]) -> dict[str, Any]:
    gitlab.add_user("reviewer-bot", TOKEN)
    project = gitlab.add_project("group/app")
    return gitlab.add_merge_request(project["id"], iid=7, title="A change", files=files)


def review(gitlab: FakeGitLab, llm: FakeOpenAI, mr: dict[str, Any], out: Path,
           *flags: str) -> tuple[int, str, Review | None, str]:
    """Run a review as a merge request pipeline would: (exit code, stderr, review.json, note)."""
    env = clean_env(
        CI="true", CI_SERVER_URL=gitlab.url, CI_PIPELINE_SOURCE="merge_request_event",
        CI_MERGE_REQUEST_PROJECT_ID=str(mr["project_id"]), CI_MERGE_REQUEST_IID="7",
        REVIEWER_GITLAB_TOKEN=TOKEN, REVIEWER_BASE_URL=llm.url, REVIEWER_MODEL="test-model",
        REVIEWER_API_KEY=API_KEY, REVIEWER_OUTPUT=str(out),
        # GitLab cut db/big.sql, and this run fetches no file in full.
        REVIEWER_MAX_FILE_BYTES="0",
        REVIEWER_QUIET="true")  # the requests' log lines are tests/test_progress.py's
    result = run_cli("review", *flags, env=env)
    notes = [d["notes"][0]["body"] for d in gitlab.discussions(mr["project_id"], 7)]
    summary = next((n for n in notes if n.startswith(MARKER)), "")
    written = Review.model_validate_json(out.read_text()) if out.exists() else None
    return result.code, result.stderr, written, summary


def test_an_mr_whose_only_file_gitlab_cut_has_no_score_and_exits_4(
        gitlab: FakeGitLab, llm: FakeOpenAI, tmp_path: Path) -> None:
    mr = open_mr(gitlab, [CUT])

    code, err, written, note = review(gitlab, llm, mr, tmp_path / "r.json", "--fail-under", "60")

    assert code == 4, err
    assert err == ("reviewer: review incomplete: 1 of 1 files that needed review were not "
                   "reviewed (listed in the review; --allow-incomplete exits 0)\n")
    assert llm.requests == []
    assert written is not None and written.score is None and written.verdict == "comment"
    assert written.summary == f"Incomplete: 1 of 1 files not reviewed: db/big.sql ({CUT_REASON})."
    assert written.coverage.model_dump() == {
        "files_total": 1, "files_reviewed": 0, "files_skipped": 0, "files_not_reviewed": 1,
        "lines_total": 0, "lines_reviewed": 0, "lines_not_reviewed": 0,
        "not_reviewed": [{"path": "db/big.sql", "reason": CUT_REASON}]}
    assert written.skipped_files == []
    assert "/100" not in note and "approve" not in note.split("\n")[1]
    assert "## 🤖 Review: no score · 💬 comment · ⚠️ incomplete" in note
    assert f"**Not reviewed:** `db/big.sql` ({CUT_REASON})" in note


def test_allow_incomplete_exits_0_and_still_says_incomplete(
        gitlab: FakeGitLab, llm: FakeOpenAI, tmp_path: Path) -> None:
    mr = open_mr(gitlab, [CUT])

    code, err, written, note = review(gitlab, llm, mr, tmp_path / "r.json", "--allow-incomplete")

    assert code == 0, err
    assert written is not None and written.summary.startswith("Incomplete: 1 of 1 files")
    assert "⚠️ incomplete" in note


def test_some_files_cut_score_what_was_read_and_never_approve(
        gitlab: FakeGitLab, llm: FakeOpenAI, tmp_path: Path) -> None:
    mr = open_mr(gitlab, [SMALL, CUT, LOCK])
    llm.queue(answer(score=95, verdict="approve", summary="Fine."))

    code, err, written, note = review(gitlab, llm, mr, tmp_path / "r.json")

    assert code == 4, err
    assert written is not None
    assert (written.score, written.verdict) == (95, "comment")
    assert written.summary == (f"Incomplete: 1 of 2 files not reviewed: db/big.sql ({CUT_REASON})."
                               "\n\nFine.")
    cov = written.coverage
    assert (cov.files_total, cov.files_reviewed, cov.files_skipped, cov.files_not_reviewed) == (
        3, 1, 1, 1)
    assert (cov.lines_total, cov.lines_reviewed, cov.lines_not_reviewed) == (3, 3, 0)
    assert [s.path for s in written.skipped_files] == ["poetry.lock"]
    assert note.split("\n")[1] == "## 🤖 Review: 95/100 · 💬 comment · ⚠️ incomplete"


def test_a_failing_gate_wins_over_an_incomplete_review(
        gitlab: FakeGitLab, llm: FakeOpenAI, tmp_path: Path) -> None:
    mr = open_mr(gitlab, [SMALL, CUT])
    llm.queue(answer(score=70))

    code, err, _, _ = review(gitlab, llm, mr, tmp_path / "r.json", "--fail-under", "80")

    assert code == 3
    assert err == "reviewer: quality gate failed: score 70 is below --fail-under 80\n"


def test_nothing_to_review_exits_0_without_a_score_and_passes_fail_under(
        gitlab: FakeGitLab, llm: FakeOpenAI, tmp_path: Path) -> None:
    mr = open_mr(gitlab, [LOCK, LOGO])

    code, err, written, note = review(gitlab, llm, mr, tmp_path / "r.json", "--fail-under", "60")

    assert code == 0, err
    assert llm.requests == []
    assert written is not None and written.score is None and written.verdict == "comment"
    assert written.summary.startswith("Nothing to review: all 2 changed files were skipped")
    assert written.coverage.files_skipped == 2 and written.coverage.complete
    assert note.split("\n")[1] == "## 🤖 Review: no score · 💬 comment"


def spec_with_one_rule(tmp_path: Path) -> Path:
    folder = tmp_path / "spec"
    folder.mkdir()
    (folder / "rule.md").write_text("---\nid: COR-001\ntitle: Correct\nseverity: major\n---\n"
                                    "Code does what it says.\n")
    return folder


def big_file(name: str) -> dict[str, Any]:
    body = "".join(f"+value_{i} = compute({i})\n" for i in range(60))
    return {"old_path": name, "new_path": name, "new_file": True,
            "diff": f"@@ -0,0 +1,60 @@\n{body}"}


def test_a_model_that_answered_for_some_requests_only_posts_the_rest_as_not_reviewed(
        gitlab: FakeGitLab, llm: FakeOpenAI, tmp_path: Path) -> None:
    mr = open_mr(gitlab, [big_file("a.py"), big_file("b.py")])
    llm.responder = lambda body: (
        Reply(status=400, error="prompt could not be processed")
        if "File: b.py" in body["messages"][-1]["content"]
        else answer(score=80, findings=[finding("a.py", 3, "minor")]))

    code, err, written, note = review(gitlab, llm, mr, tmp_path / "r.json", "--spec",
                                      str(spec_with_one_rule(tmp_path)),
                                      "--max-input-tokens", "2000")

    assert code == 4, err
    assert len(llm.requests) == 2, (err, written)
    assert "a model request failed" in err and "prompt could not be processed" in err
    assert written is not None
    assert written.files_reviewed == ["a.py"]
    [missing] = written.coverage.not_reviewed
    assert missing.path == "b.py" and missing.reason.startswith("the model failed: ")
    assert (written.score, [f.path for f in written.findings]) == (80, ["a.py"])
    assert written.summary.startswith("Incomplete: 1 of 2 files not reviewed: b.py")
    assert note  # posted


def test_when_every_request_fails_nothing_is_posted_and_the_run_exits_1(
        gitlab: FakeGitLab, llm: FakeOpenAI, tmp_path: Path) -> None:
    mr = open_mr(gitlab, [SMALL])
    llm.queue(Reply(status=400, error="prompt could not be processed"))

    code, err, written, note = review(gitlab, llm, mr, tmp_path / "r.json")

    assert code == 1
    assert "HTTP 400" in err and "prompt could not be processed" in err
    assert written is None and note == ""
    assert [r for r in gitlab.requests if r.method != "GET"] == []


def test_findings_about_files_not_in_the_change_are_merged_shown_apart_and_never_decide(
        gitlab: FakeGitLab, llm: FakeOpenAI, tmp_path: Path) -> None:
    mr = open_mr(gitlab, [SMALL])
    ghost = finding("src/ghost.py", 10, "critical", rule=None, title="Invented",
                    message="Not there.")
    llm.queue(answer(score=90, verdict="approve", findings=[ghost] * 10 + [
        finding("app.py", 3, "minor", title="Real")]))

    code, err, written, note = review(gitlab, llm, mr, tmp_path / "r.json", "--fail-on",
                                      "critical")

    assert code == 0, err
    assert written is not None
    assert [(f.path, f.in_change) for f in written.findings] == [
        ("src/ghost.py", False), ("app.py", True)]
    assert (written.score, written.verdict) == (90, "approve")
    about = note.split("**About files not in this change:** ")[1].split("\n")[0]
    assert about == "`src/ghost.py:10` critical: Invented"
    table = note.split("| Severity |")[1].split("\n\n")[0]
    assert "ghost" not in table


def test_an_unplaced_finding_on_a_real_file_still_counts(
        gitlab: FakeGitLab, llm: FakeOpenAI, tmp_path: Path) -> None:
    mr = open_mr(gitlab, [SMALL, LOCK])
    llm.queue(answer(score=90, verdict="approve", findings=[
        finding("poetry.lock", 40, "critical", rule=None, title="Pinned to a yanked release")]))

    code, _, written, _ = review(gitlab, llm, mr, tmp_path / "r.json")

    assert code == 0
    assert written is not None and written.findings[0].in_change
    assert (written.score, written.verdict) == (49, "request_changes")


@pytest.mark.parametrize("flag", ["--output", "--codequality"])
def test_an_output_that_cannot_be_written_stops_the_run_before_any_model_request(
        gitlab: FakeGitLab, llm: FakeOpenAI, tmp_path: Path, flag: str) -> None:
    mr = open_mr(gitlab, [SMALL])
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    target = str(blocker / "review.json")  # a folder that is a file

    code, err, _, note = review(gitlab, llm, mr, tmp_path / "r.json", flag, target)

    assert code == 2
    assert err.startswith(f"reviewer: error: {flag} {target} cannot be written: ")
    assert err.count("\n") == 1
    assert llm.requests == [] and note == ""


def test_an_output_that_is_a_directory_is_a_usage_error(
        gitlab: FakeGitLab, llm: FakeOpenAI, tmp_path: Path) -> None:
    mr = open_mr(gitlab, [SMALL])

    code, err, _, _ = review(gitlab, llm, mr, tmp_path / "r.json", "--output", str(tmp_path))

    assert code == 2 and "is a directory" in err
    assert llm.requests == []


def test_output_to_a_pipe_writes_into_it_and_leaves_it_a_pipe(
        gitlab: FakeGitLab, llm: FakeOpenAI, tmp_path: Path) -> None:
    import os
    import stat
    import threading

    mr = open_mr(gitlab, [SMALL])
    llm.queue(answer(score=88))
    fifo = tmp_path / "review.fifo"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()

    code, err, _, _ = review(gitlab, llm, mr, tmp_path / "unused.json", "--output", str(fifo))
    reader.join(timeout=30)

    assert code == 0, err
    assert stat.S_ISFIFO(fifo.stat().st_mode)  # not replaced by a regular file
    assert Review.model_validate_json(received[0]).score == 88


def test_output_to_dev_stdout_prints_the_review_json(
        gitlab: FakeGitLab, llm: FakeOpenAI, tmp_path: Path) -> None:
    mr = open_mr(gitlab, [SMALL])
    llm.queue(answer(score=66))
    env = clean_env(CI_SERVER_URL=gitlab.url, CI_MERGE_REQUEST_PROJECT_ID=str(mr["project_id"]),
                    CI_MERGE_REQUEST_IID="7", REVIEWER_GITLAB_TOKEN=TOKEN,
                    REVIEWER_BASE_URL=llm.url, REVIEWER_MODEL="test-model",
                    REVIEWER_API_KEY=API_KEY)

    result = run_cli("review", "--dry-run", "--output", "/dev/stdout", env=env)

    assert result.code == 0, result.stderr
    assert '"schema_version": 1' in result.stdout and '"score": 66' in result.stdout


def test_the_same_path_for_review_and_code_quality_is_a_usage_error(
        gitlab: FakeGitLab, llm: FakeOpenAI, tmp_path: Path) -> None:
    mr = open_mr(gitlab, [SMALL])
    out = tmp_path / "r.json"

    code, err, _, _ = review(gitlab, llm, mr, out, "--codequality", str(out))

    assert code == 2
    assert "--codequality and --output are both" in err
    assert llm.requests == []


def test_an_output_under_a_file_says_which_file_is_in_the_way(
        gitlab: FakeGitLab, llm: FakeOpenAI, tmp_path: Path) -> None:
    mr = open_mr(gitlab, [SMALL])
    blocker = tmp_path / "afile"
    blocker.write_text("")

    code, err, _, _ = review(gitlab, llm, mr, tmp_path / "r.json", "--output",
                             str(blocker / "sub" / "review.json"))

    assert code == 2
    assert err.endswith(f"cannot be written: {blocker} is a file, not a folder\n")


def test_files_not_reviewed_for_one_reason_are_listed_under_it_once(
        gitlab: FakeGitLab, llm: FakeOpenAI, tmp_path: Path) -> None:
    cut = [{**CUT, "old_path": f"db/{n}.sql", "new_path": f"db/{n}.sql"} for n in "abc"]
    mr = open_mr(gitlab, [SMALL, *cut])
    llm.queue(answer(score=80))

    code, _, written, note = review(gitlab, llm, mr, tmp_path / "r.json")

    assert code == 4
    assert written is not None
    assert written.summary.startswith("Incomplete: 3 of 4 files not reviewed: db/a.sql, "
                                      f"db/b.sql, db/c.sql ({CUT_REASON}).")
    shown = note.split("<details><summary>Review JSON")[0]
    assert shown.count("too large for GitLab's diff limits") == 2  # the summary and the list
    assert f"**Not reviewed:** `db/a.sql`, `db/b.sql`, `db/c.sql` ({CUT_REASON})" in note


def test_the_same_summary_from_several_requests_is_said_once(
        gitlab: FakeGitLab, llm: FakeOpenAI, tmp_path: Path) -> None:
    mr = open_mr(gitlab, [big_file("a.py"), big_file("b.py")])
    llm.queue(answer(summary="Looks fine."), answer(summary="Looks fine."))

    code, _, written, _ = review(gitlab, llm, mr, tmp_path / "r.json", "--spec",
                                 str(spec_with_one_rule(tmp_path)), "--max-input-tokens", "2000")

    assert code == 0
    assert written is not None and written.usage.requests == 2
    assert written.summary == "Looks fine."
