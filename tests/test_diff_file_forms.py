"""`reviewer review --diff`: inputs that are not one two-way diff (combined, coloured, a series
that changes a file twice) are refused with what to run instead; the rest are reviewed.

Every diff here is made by real git in a temporary repository, and goes through the real CLI.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from reviewer.model import Review
from tests.conftest import answer, clean_env, finding, run_cli
from tests.openai_standin import FakeOpenAI
from tests.test_diff_file import saved_diff, sent
from tests.test_localgit import commit, git, make_repo

ESC = "\x1b"


def raw_git(repo: Path, *args: str) -> bytes:
    """git's own bytes, unstripped, whatever its exit code (a merge with conflicts fails)."""
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
                          cwd=repo, capture_output=True, check=False).stdout


def review_stdin(data: bytes, llm: FakeOpenAI, cwd: Path) -> tuple[int, str]:
    """`reviewer review --diff -` fed data: the exit code and stderr (bytes kept as they are,
    so a raw control character in it is seen)."""
    proc = subprocess.run([sys.executable, "-m", "reviewer", "review", "--diff", "-",
                           "--base-url", llm.url, "--model", "m", "-o", str(cwd / "out.json")],
                          input=data, capture_output=True, env=clean_env(), cwd=cwd,
                          timeout=120, check=False)
    return proc.returncode, proc.stderr.decode("utf-8", "replace")


def refused(data: bytes, llm: FakeOpenAI, cwd: Path, *words: str) -> str:
    """Assert data is a usage error of one line holding words and no raw control character."""
    code, stderr = review_stdin(data, llm, cwd)
    assert code == 2, stderr
    assert stderr.startswith("reviewer: error: --diff stdin") and stderr.count("\n") == 1, stderr
    assert all(word in stderr for word in words), (words, stderr)
    assert not any(ord(c) < 32 for c in stderr.rstrip("\n")), repr(stderr)
    return stderr


def in_a_conflicted_merge(tmp_path: Path) -> Path:
    repo = make_repo(tmp_path / "repo")
    git(repo, "checkout", "-qb", "other")
    commit(repo, "theirs", {"app.py": "def add(a, b):\n    return b + a\n"})
    git(repo, "checkout", "-q", "main")
    commit(repo, "ours", {"app.py": "def add(a, b):\n    return a - b\n"})
    raw_git(repo, "merge", "other")  # fails: both sides changed line 2
    return repo


def test_a_combined_diff_from_a_merge_is_refused_not_taken_as_empty(
        tmp_path: Path, llm: FakeOpenAI) -> None:
    repo = in_a_conflicted_merge(tmp_path)
    conflict = raw_git(repo, "diff")
    assert conflict.startswith(b"diff --cc app.py") and b"<<<<<<<" in conflict  # git's form
    refused(conflict, llm, tmp_path, "combined diff (diff --cc", "`git diff HEAD`",
            "`git diff A...B`")
    commit(repo, "merged", {"app.py": "def add(a, b):\n    return a + b + 0\n"})
    merge_commit = raw_git(repo, "show")
    assert b"\n@@@ -1,2 -1,2 +1,2 @@@\n" in merge_commit
    refused(merge_commit, llm, tmp_path, "combined diff (diff --cc", "`git diff M^1 M`")
    refused(raw_git(repo, "show", "-c"), llm, tmp_path, "combined diff (diff --combined")
    # Hunks alone, the headers cut off, are still git's three-way form.
    hunks_only = merge_commit[merge_commit.index(b"@@@"):]
    refused(b"--- a/app.py\n+++ b/app.py\n" + hunks_only, llm, tmp_path, "combined diff")
    assert llm.requests == []


def test_the_two_way_diffs_the_refusal_names_are_reviewed(tmp_path: Path,
                                                          llm: FakeOpenAI) -> None:
    repo = in_a_conflicted_merge(tmp_path)
    llm.queue(answer(score=10, findings=[finding("app.py", 2, "blocker", title="Markers")]))
    code, stderr = review_stdin(raw_git(repo, "diff", "HEAD"), llm, tmp_path)
    assert code == 0, stderr
    assert "<<<<<<< HEAD" in sent(llm)  # the conflict markers reach the model
    commit(repo, "merged", {"app.py": "def add(a, b):\n    return a + b + 0\n"})
    llm.queue(answer(score=90))
    code, stderr = review_stdin(raw_git(repo, "diff", "HEAD^1", "HEAD"), llm, tmp_path)
    assert code == 0, stderr
    assert Review.model_validate_json((tmp_path / "out.json").read_text()).files_reviewed == [
        "app.py"]


def test_a_coloured_diff_is_refused_with_no_escape_in_the_message(tmp_path: Path,
                                                                  llm: FakeOpenAI) -> None:
    patch = saved_diff(tmp_path, "def add(a, b):\n    return a - b")  # "\ No newline" too
    repo = tmp_path / "repo"
    for option in ("--color=always", "--color-words"):
        coloured = raw_git(repo, "-c", "color.ui=always", "diff", option, "main..feature")
        assert coloured.startswith(ESC.encode() + b"["), coloured[:20]
        refused(coloured, llm, tmp_path, "colour codes", "`git diff --no-color`")
    assert b"\\ No newline" in patch.read_bytes()
    assert llm.requests == []


def test_a_word_diff_is_refused_by_name(tmp_path: Path, llm: FakeOpenAI) -> None:
    saved_diff(tmp_path, "def add(a, b):\n    return a - b\n")
    repo = tmp_path / "repo"
    for form in ("plain", "porcelain"):
        words = raw_git(repo, "diff", f"--word-diff={form}", "main..feature")
        refused(words, llm, tmp_path, "is a word diff (`git diff --word-diff`)",
                "without --word-diff")
    assert llm.requests == []


def test_a_file_holding_escape_sequences_is_still_a_diff(tmp_path: Path,
                                                         llm: FakeOpenAI) -> None:
    patch = saved_diff(tmp_path, f"{ESC}[31mred{ESC}[0m\nprint('{ESC}[1mbold')\n")
    llm.queue(answer(score=90))
    code, stderr = review_stdin(patch.read_bytes(), llm, tmp_path)
    assert code == 0, stderr
    assert f"{ESC}[31mred" in sent(llm)


def test_no_error_message_echoes_a_control_character_of_the_input(tmp_path: Path,
                                                                  llm: FakeOpenAI) -> None:
    # A line the parser stops at is quoted in the message: its ESC and CR come out escaped.
    broken = (b"--- a/x.py\n+++ b/x.py\n@@ -1,2 +1,2 @@\n-a\n+b\n"
              b"?\x1b[31mred\r\x07\n")
    refused(broken, llm, tmp_path, "Hunk diff line expected", "?\\x1b[31mred \\x07; expected")
    # A file name git quotes ("a\033[31mb.py") is named unquoted in the message, escaped.
    repo = make_repo(tmp_path / "repo")
    name = f"a{ESC}[31mb.py"
    commit(repo, "one", {name: "x = 1\n"})
    commit(repo, "two", {name: "x = 2\n"})
    series = raw_git(repo, "format-patch", "-2", "--stdout")
    assert b'"a/a\\033[31mb.py"' in series
    refused(series, llm, tmp_path, "changes a\\x1b[31mb.py in more than one patch")
    assert llm.requests == []


def two_commits(tmp_path: Path, second: dict[str, str]) -> Path:
    """A repo whose feature branch has two commits: app.py changed, then the files second."""
    repo = make_repo(tmp_path / "repo")
    git(repo, "checkout", "-qb", "feature")
    commit(repo, "subtract", {"app.py": "def add(a, b):\n    return a - b\n"})
    commit(repo, "more", second)
    return repo


def test_a_series_that_changes_a_file_twice_is_refused(tmp_path: Path,
                                                        llm: FakeOpenAI) -> None:
    repo = two_commits(tmp_path, {"app.py": "def add(a, b):\n    return a - b\n\n\n"
                                            "def sub(a, b):\n    return a + b\n"})
    for data in (raw_git(repo, "format-patch", "-2", "--stdout"),
                 raw_git(repo, "log", "-p", "main..feature"),
                 raw_git(repo, "diff", "main", "feature~1")
                 + raw_git(repo, "diff", "feature~1", "feature")):
        refused(data, llm, tmp_path, "changes app.py in more than one patch", "`git diff A..B`",
                "one patch at a time")
    # Renamed by the second patch: the rename's source is the file the first one changed.
    git(repo, "mv", "app.py", "calc.py")
    git(repo, "commit", "-qm", "rename")
    refused(raw_git(repo, "format-patch", "-2", "--stdout"), llm, tmp_path,
            "changes app.py in more than one patch")
    assert llm.requests == []


def test_a_series_that_changes_each_file_once_is_reviewed(tmp_path: Path,
                                                          llm: FakeOpenAI) -> None:
    repo = two_commits(tmp_path, {"old.txt": "hello\n"})
    mails = raw_git(repo, "format-patch", "-2", "--stdout")
    assert mails.count(b"\nSubject: [PATCH ") == 2
    for series in (mails, raw_git(repo, "log", "-p", "main..feature")):
        llm.queue(answer(score=60, findings=[finding("app.py", 2, "major", title="Subtracts")]))
        code, stderr = review_stdin(series, llm, tmp_path)
        assert code == 0, stderr
        review = Review.model_validate_json((tmp_path / "out.json").read_text())
        assert sorted(review.files_reviewed) == ["app.py", "old.txt"]
        assert [(f.path, f.line, f.placed) for f in review.findings] == [("app.py", 2, True)]
    assert "return a - b" in sent(llm) and "hello" in sent(llm)
    assert "Subject:" not in sent(llm)  # the next mail's headers are not read as hunk lines


def test_the_summary_names_a_file_with_control_characters_escaped(tmp_path: Path,
                                                                  llm: FakeOpenAI) -> None:
    repo = make_repo(tmp_path / "repo")
    commit(repo, "two files", {f"p{ESC}[31mq.min.js": "x\n", "app.py": "y = 1\n"})
    llm.queue(answer(score=90))
    patch = tmp_path / "change.diff"
    patch.write_bytes(raw_git(repo, "diff", "HEAD~1", "HEAD"))
    result = run_cli("review", "--diff", str(patch), "--base-url", llm.url, "--model", "m",
                     "--exclude", "*.js", "-o", "out.json", cwd=tmp_path)
    assert result.code == 0, result.stderr
    assert "Skipped by policy: p\\x1b[31mq.min.js" in " ".join(result.stdout.split())
    assert ESC not in result.stdout + result.stderr
