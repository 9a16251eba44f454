"""`reviewer review --diff FILE` (or `-`): a saved `git diff` reviewed offline, no repository."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

from reviewer.model import Review
from tests.conftest import answer, clean_env, finding, run_cli
from tests.openai_standin import FakeOpenAI
from tests.test_localgit import commit, git, make_repo


def saved_diff(tmp_path: Path, text: str | bytes = "def add(a, b):\n    return a - b\n") -> Path:
    repo = make_repo(tmp_path / "repo")
    git(repo, "checkout", "-qb", "feature")
    data = text if isinstance(text, bytes) else text.encode()
    (repo / "app.py").write_bytes(data)
    commit(repo, "change", {})
    patch = subprocess.run(["git", "diff", "main..feature"], cwd=repo, check=True,
                           capture_output=True).stdout
    out = tmp_path / "change.diff"
    out.write_bytes(patch)
    return out


def sent(llm: FakeOpenAI) -> str:
    return "\n".join(m["content"] for r in llm.requests for m in r["messages"])


def test_a_saved_git_diff_is_reviewed_outside_any_repository(tmp_path: Path,
                                                             llm: FakeOpenAI) -> None:
    patch = saved_diff(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    llm.queue(answer(score=60, findings=[finding("app.py", 2, "major", title="Subtracts")]))
    result = run_cli("review", "--diff", str(patch), "--base-url", llm.url, "--model", "m",
                     "-o", "out.json", cwd=elsewhere)
    assert result.code == 0, result.stderr
    review = Review.model_validate_json((elsewhere / "out.json").read_text())
    assert review.files_reviewed == ["app.py"]
    assert [(f.path, f.line, f.placed) for f in review.findings] == [("app.py", 2, True)]
    assert "return a - b" in sent(llm)
    assert review.local is None and review.merge_request is None
    # What was reviewed is on record: the file as given, and its bytes' digest.
    assert review.diff_file is not None
    assert (review.diff_file.path, review.diff_file.size, review.diff_file.sha256) == \
        (str(patch), len(patch.read_bytes()), hashlib.sha256(patch.read_bytes()).hexdigest())


def test_stdin_and_bytes_that_are_not_utf8(tmp_path: Path, llm: FakeOpenAI) -> None:
    patch = saved_diff(tmp_path, b"def add(a, b):\n    return a - b  # J\xfcrgen\n")
    llm.queue(answer(score=90))
    out = tmp_path / "out.json"
    proc = subprocess.run([sys.executable, "-m", "reviewer", "review", "--diff", "-",
                           "--base-url", llm.url, "--model", "m", "-o", str(out)],
                          input=patch.read_bytes(), capture_output=True, env=clean_env(),
                          cwd=tmp_path, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "Jürgen" in sent(llm)
    review = Review.model_validate_json(out.read_text())
    assert review.files_reviewed == ["app.py"]
    assert review.diff_file is not None and review.diff_file.path == "-"
    assert review.diff_file.sha256 == hashlib.sha256(patch.read_bytes()).hexdigest()


def test_a_bad_diff_file_is_a_usage_error_with_one_line(tmp_path: Path,
                                                         llm: FakeOpenAI) -> None:
    (tmp_path / "notes.txt").write_text("just some notes, no diff here\n")
    (tmp_path / "empty.diff").write_text("")
    (tmp_path / "broken.diff").write_text(
        "diff --git a/x.py b/x.py\n--- a/x.py\n+++ b/x.py\n@@ -1,3 +1,3 @@\n+only one\n")
    for name, words in [("missing.diff", "no such file"), (".", "is a directory"),
                        ("empty.diff", "is empty"), ("notes.txt", "no file changes"),
                        ("broken.diff", "git diff")]:
        result = run_cli("review", "--diff", name, "--base-url", llm.url, "--model", "m",
                         cwd=tmp_path)
        assert result.code == 2, (name, result.stderr)
        assert words in result.stderr and len(result.stderr.strip().splitlines()) == 1, \
            result.stderr
    assert llm.requests == []


def test_diff_with_local_is_a_usage_error(tmp_path: Path, llm: FakeOpenAI) -> None:
    patch = saved_diff(tmp_path)
    result = run_cli("review", "--diff", str(patch), "--local", "--base-url", llm.url,
                     cwd=tmp_path)
    assert result.code == 2 and "--diff" in result.stderr
