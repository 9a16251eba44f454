"""Extreme merge requests through the real CLI: an empty one, 5,000 files, a 20 MB diff of one
file, a 1 MB line. None may crash or hang; each gets its outcome (nothing to review and exit 0,
or reviewed within the budget, or listed as not reviewed for a limit and exit 4), in bounded
time and memory. The measurements are printed (pytest -s) for the record."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from reviewer.model import Review
from tests.conftest import TOKEN, answer, clean_env, finding
from tests.gitlab_standin import FakeGitLab, git_commit
from tests.openai_standin import FakeOpenAI, Reply
from tests.test_review_gitlab import ci_env, summaries

MB = 1024 * 1024


@dataclass(frozen=True)
class Run:
    code: int
    stderr: str
    seconds: float
    peak_mb: float  # the CLI process's own peak resident memory


def measured(env: dict[str, str], *args: str, cwd: Path | None = None,
             timeout: float = 300) -> Run:
    """`reviewer review` in a subprocess, with its wall time and its own peak memory."""
    with tempfile.TemporaryFile() as err:
        started = time.monotonic()
        proc = subprocess.Popen([sys.executable, "-m", "reviewer", "review", *args], env=env,
                                cwd=cwd, stdout=subprocess.DEVNULL, stderr=err)
        killer = threading.Timer(timeout, proc.kill)  # a hang fails the test, not the suite
        killer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage
        finally:
            killer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.monotonic() - started
        err.seek(0)
        stderr = err.read().decode(errors="replace")
    assert seconds < timeout, f"killed after {timeout} s"
    return Run(proc.returncode, stderr, seconds, usage.ru_maxrss / 1024)


@pytest.fixture
def project(gitlab: FakeGitLab) -> dict[str, Any]:
    gitlab.add_user("reviewer-bot", TOKEN)
    return gitlab.add_project("group/app")


def report(name: str, run: Run) -> None:
    print(f"\n{name}: exit {run.code}, {run.seconds:.1f} s, peak {run.peak_mb:.0f} MB")


def big_file(lines: int, width: int = 50) -> str:
    """A new file's diff of about lines * width bytes, as GitLab sends it (from the first @@)."""
    row = "x" * (width - 16)
    return f"@@ -0,0 +1,{lines} @@\n" + "".join(f"+line {i:08d} {row}\n" for i in range(lines))


def test_an_empty_merge_request_has_nothing_to_review_and_exits_0(
        gitlab: FakeGitLab, llm: FakeOpenAI, project: dict[str, Any], tmp_path: Path) -> None:
    mr = gitlab.add_merge_request(project["id"], iid=1, title="Nothing", files=[])
    out = tmp_path / "review.json"

    run = measured(ci_env(gitlab, llm, mr, out))

    report("empty MR", run)
    assert run.code == 0, run.stderr
    review = Review.model_validate_json(out.read_text())
    assert (review.score, review.verdict, review.coverage.files_total) == (None, "comment", 0)
    assert "Nothing to review" in review.summary
    assert llm.requests == []
    [summary] = summaries(gitlab, project["id"], 1)
    assert "no score" in summary["body"]


def test_a_5000_file_merge_request_is_reviewed_whole_within_the_budget(
        gitlab: FakeGitLab, llm: FakeOpenAI, project: dict[str, Any], tmp_path: Path) -> None:
    files = [{"old_path": f"src/m{i}.py", "new_path": f"src/m{i}.py", "new_file": True,
              "diff": f"@@ -0,0 +1,2 @@\n+X_{i} = {i}\n+Y_{i} = X_{i} * 2\n"}
             for i in range(5000)]
    mr = gitlab.add_merge_request(project["id"], iid=2, title="Many files", files=files)
    llm.responder = lambda body: answer(findings=[finding(
        body["messages"][-1]["content"].split("File: ")[1].split(" ")[0], 1, "minor")])
    out = tmp_path / "review.json"

    run = measured(ci_env(gitlab, llm, mr, out), timeout=600)

    report(f"5,000-file MR ({len(llm.requests)} model requests)", run)
    assert run.code == 0, run.stderr
    review = Review.model_validate_json(out.read_text())
    assert review.coverage.files_reviewed == 5000 and review.coverage.complete
    assert all(len(r["messages"][-1]["content"]) < 6000 * 3 for r in llm.requests)  # the budget
    assert len(summaries(gitlab, project["id"], 2)) == 1
    assert run.seconds < 300 and run.peak_mb < 1024


BUDGET_CHARS = 6000 * 3  # the default --max-input-tokens, at three characters a token
DEADLINE = 20
# A model's answer takes time: the ~1,000 requests of a 20 MB file then outlast the deadline
# (answered at once, the stand-in let the whole file through in 13 s).
ANSWER_DELAY = 0.1
TWENTY_MB = 20 * MB // 50  # lines of 50 bytes
ONE_MB_LINE = "@@ -0,0 +1 @@\n+" + "y" * MB + "\n"


def two_files(gitlab: FakeGitLab, project: dict[str, Any], diff: str) -> dict[str, Any]:
    files = [{"old_path": "big.txt", "new_path": "big.txt", "new_file": True, "diff": diff},
             {"old_path": "small.py", "new_path": "small.py", "new_file": True,
              "diff": "@@ -0,0 +1 @@\n+x = 1\n"}]
    return gitlab.add_merge_request(project["id"], iid=3, title="Huge", files=files)


def within_budget(llm: FakeOpenAI) -> bool:
    return all(len(r["messages"][-1]["content"]) <= BUDGET_CHARS for r in llm.requests)


@pytest.mark.parametrize(("name", "diff"), [("20 MB diff of one file", big_file(TWENTY_MB)),
                                            ("1 MB single line", ONE_MB_LINE)])
def test_a_file_over_max_file_bytes_is_listed_as_not_reviewed_and_exits_4(
        gitlab: FakeGitLab, llm: FakeOpenAI, project: dict[str, Any], tmp_path: Path,
        name: str, diff: str) -> None:
    mr = two_files(gitlab, project, diff)
    llm.responder = lambda body: answer()
    out = tmp_path / "review.json"

    run = measured(ci_env(gitlab, llm, mr, out))

    report(name, run)
    assert run.code == 4, run.stderr
    review = Review.model_validate_json(out.read_text())
    assert [n.path for n in review.coverage.not_reviewed] == ["big.txt"]
    assert "--max-file-bytes" in review.coverage.not_reviewed[0].reason
    assert review.files_reviewed == ["small.py"]  # the rest of the change is still reviewed
    assert all("big.txt" not in r["messages"][-1]["content"] for r in llm.requests)
    assert run.seconds < 120 and run.peak_mb < 1024


def test_a_20_mb_diff_read_in_full_is_bounded_by_the_deadline_and_exits_4(
        gitlab: FakeGitLab, llm: FakeOpenAI, project: dict[str, Any], tmp_path: Path) -> None:
    mr = two_files(gitlab, project, big_file(TWENTY_MB))
    llm.responder = lambda body: Reply(content=answer(), delay=ANSWER_DELAY)
    out = tmp_path / "review.json"
    env = ci_env(gitlab, llm, mr, out, REVIEWER_MAX_FILE_BYTES=str(30 * MB),
                 REVIEWER_DEADLINE=str(DEADLINE))

    run = measured(env)

    report(f"20 MB diff read in full, --deadline {DEADLINE} ({len(llm.requests)} requests)", run)
    assert run.code == 4, run.stderr
    review = Review.model_validate_json(out.read_text())
    assert "big.txt" in [n.path for n in review.coverage.not_reviewed]
    assert within_budget(llm)
    assert run.seconds < DEADLINE + 90 and run.peak_mb < 1024


def test_a_1_mb_line_read_in_full_is_clipped_to_the_budget_and_reviewed(
        gitlab: FakeGitLab, llm: FakeOpenAI, project: dict[str, Any], tmp_path: Path) -> None:
    mr = two_files(gitlab, project, ONE_MB_LINE)
    llm.responder = lambda body: answer()
    out = tmp_path / "review.json"

    run = measured(ci_env(gitlab, llm, mr, out, REVIEWER_MAX_FILE_BYTES=str(2 * MB)))

    report(f"1 MB line read in full ({len(llm.requests)} requests)", run)
    assert run.code == 0, run.stderr
    review = Review.model_validate_json(out.read_text())
    assert sorted(review.files_reviewed) == ["big.txt", "small.py"]
    assert within_budget(llm)
    assert run.seconds < 120 and run.peak_mb < 1024


def local_change(tmp_path: Path, content: bytes) -> tuple[Path, str, str]:
    repo = tmp_path / "repo"
    base = git_commit(repo, None, {"README": b"hello\n"})
    head = git_commit(repo, base, {"big.txt": content, "small.py": b"x = 1\n"})
    subprocess.run(["git", "-C", str(repo), "update-ref", "HEAD", head], check=True)
    return repo, base, head


TWENTY_MB_FILE = b"".join(b"line %08d %s\n" % (i, b"x" * 35) for i in range(TWENTY_MB))


@pytest.mark.parametrize(("name", "content", "limit", "code"), [
    # Over --max-file-bytes (1,000,000 by default, for local changes too): not reviewed.
    ("20 MB file", TWENTY_MB_FILE, None, 4),
    ("1 MB single line", b"y" * MB + b"\n", None, 4),
    # Read in full: split within the budget and stopped by the deadline, or clipped and read.
    ("20 MB file read in full", TWENTY_MB_FILE, 30 * MB, 4),
    ("1 MB single line read in full", b"y" * MB + b"\n", 2 * MB, 0),
])
def test_a_huge_local_change_is_reviewed_within_the_budget_or_listed_as_not_reviewed(
        llm: FakeOpenAI, tmp_path: Path, name: str, content: bytes, limit: int | None,
        code: int) -> None:
    repo, base, head = local_change(tmp_path, content)
    llm.responder = lambda body: Reply(content=answer(), delay=ANSWER_DELAY)
    out = tmp_path / "review.json"
    env = clean_env(REVIEWER_BASE_URL=llm.url, REVIEWER_MODEL="m", REVIEWER_API_KEY="k",
                    REVIEWER_OUTPUT=str(out), REVIEWER_DEADLINE=str(DEADLINE),
                    **({"REVIEWER_MAX_FILE_BYTES": str(limit)} if limit else {}))

    run = measured(env, "--local", "--base", base, "--head", head, cwd=repo)

    report(f"local {name}, --deadline {DEADLINE} ({len(llm.requests)} requests)", run)
    assert run.code == code, run.stderr
    review = Review.model_validate_json(out.read_text())
    missing = [n.path for n in review.coverage.not_reviewed]
    assert ("big.txt" in missing) == (code == 4)
    assert within_budget(llm)
    assert run.seconds < DEADLINE + 90 and run.peak_mb < 1024
