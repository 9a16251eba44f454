"""Files GitLab cut (collapsed, too_large) are read in full: /raw_diffs, else /changes.

Everything runs over real HTTP against the GitLab stand-in, which cuts diffs by GitLab's own
rules, through the real python-gitlab; the review tests run the real CLI.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from reviewer.diff import limit_reason
from reviewer.gitlab import GitLab
from reviewer.gitlab_diffs import read_patch
from reviewer.model import Review
from tests.conftest import API_KEY, TOKEN, answer, clean_env, finding, run_cli
from tests.gitlab_standin import FakeGitLab, files_from_git, git_commit
from tests.openai_standin import FakeOpenAI

HUNKS = 450  # ~24 KB of diff: over GitLab's default collapse limit of 20 KiB


def many_hunks(count: int = HUNKS, tag: str = "b") -> str:
    """A modified file's diff of many small hunks, each adding `{tag}{i} = 1` at new line 10i+2."""
    return "".join(f"@@ -{10 * i + 1},3 +{10 * i + 1},3 @@\n a{i}\n-{tag}{i} = 0\n+{tag}{i} = 1\n"
                   f" c{i}\n" for i in range(count))


def project(gitlab: FakeGitLab, files: list[dict[str, Any]], **mr: Any) -> dict[str, Any]:
    gitlab.add_user("reviewer-bot", TOKEN)
    created = gitlab.add_project("group/app")
    return gitlab.add_merge_request(created["id"], iid=1, title="change", files=files, **mr)


def fetch(gitlab: FakeGitLab, **options: Any) -> dict[str, Any]:
    """The merge request's changes by path, as GitLab.fetch returns them."""
    changes = GitLab(gitlab.url, TOKEN, **options).fetch("group/app", 1).changes
    return {c.new_path: c for c in changes}


def reads(gitlab: FakeGitLab) -> list[str]:
    """The diff endpoints asked, with access_raw_diffs marked."""
    ends = ("/diffs", "/changes", "/raw_diffs")
    return [r.path.rsplit("/", 1)[-1] + ("?raw" if r.query.get("access_raw_diffs") else "")
            for r in gitlab.requests if r.path.endswith(ends)]


def modified(path: str, diff: str, **flags: Any) -> dict[str, Any]:
    return {"old_path": path, "new_path": path, "diff": diff, **flags}


SMALL = modified("small.py", "@@ -1 +1 @@\n-x = 0\n+x = 1\n")


def test_a_collapsed_file_is_read_whole_from_raw_diffs_once(gitlab: FakeGitLab) -> None:
    project(gitlab, [SMALL, modified("many.py", many_hunks()), modified("more.py", many_hunks())])
    changes = fetch(gitlab)
    assert [(c.collapsed, c.too_large, c.diff) for c in (changes["many.py"], changes["more.py"])] \
        == [(False, False, many_hunks())] * 2
    assert changes["small.py"].diff == SMALL["diff"]
    assert reads(gitlab) == ["diffs", "raw_diffs"]  # one read for every file GitLab cut


def test_nothing_is_read_again_when_gitlab_cut_nothing(gitlab: FakeGitLab) -> None:
    project(gitlab, [SMALL])
    assert fetch(gitlab)["small.py"].diff == SMALL["diff"]
    assert reads(gitlab) == ["diffs"]


def test_too_large_is_read_from_raw_diffs(gitlab: FakeGitLab) -> None:
    project(gitlab, [modified("big.py", many_hunks(120))])
    gitlab.max_patch_bytes = 4000  # an admin's low diff_max_patch_bytes: 6 KB is too_large
    big = fetch(gitlab)["big.py"]
    assert (big.too_large, big.collapsed, big.diff) == (False, False, many_hunks(120))


def test_without_raw_diffs_changes_with_access_raw_diffs_fills_collapsed_files(
        gitlab: FakeGitLab) -> None:
    project(gitlab, [modified("many.py", many_hunks()), modified("big.py", many_hunks(120))])
    gitlab.raw_diffs_endpoint = False  # GitLab before 17.9
    # An admin's diff_max_patch_bytes that makes many.py too_large and big.py collapsed.
    gitlab.max_patch_bytes = len(many_hunks().encode())
    changes = fetch(gitlab)
    assert changes["big.py"].diff == many_hunks(120)
    # Gitaly cuts a too_large file even for access_raw_diffs: it stays for diff.select to list.
    assert (changes["many.py"].too_large, changes["many.py"].diff) == (True, "")
    assert reads(gitlab) == ["diffs", "raw_diffs", "changes?raw"]


def test_gitlab_before_15_7_reads_changes_then_changes_with_access_raw_diffs(
        gitlab: FakeGitLab) -> None:
    project(gitlab, [SMALL, modified("many.py", many_hunks())])
    gitlab.diffs_endpoint = gitlab.raw_diffs_endpoint = False
    changes = fetch(gitlab)
    assert changes["many.py"].diff == many_hunks()
    assert changes["small.py"].diff == SMALL["diff"]
    assert reads(gitlab) == ["diffs", "changes", "raw_diffs", "changes?raw"]


def test_a_file_over_max_file_bytes_stays_cut_and_says_so(
        gitlab: FakeGitLab, caplog: pytest.LogCaptureFixture) -> None:
    project(gitlab, [modified("many.py", many_hunks()), modified("fits.py", many_hunks(50)),
                     modified("flagged.py", many_hunks(50), collapsed=True)])
    with caplog.at_level(logging.WARNING, logger="reviewer"):
        changes = fetch(gitlab, max_file_bytes=10_000)
    assert (changes["many.py"].collapsed, changes["many.py"].diff) == (True, "")
    assert changes["flagged.py"].diff == many_hunks(50)  # cut by GitLab, within our limit
    size = len(many_hunks().encode())
    assert caplog.messages == [f"many.py: its diff is {size} bytes, over --max-file-bytes "
                               "10000: not reviewed"]
    assert "changes?raw" not in reads(gitlab)  # its size was known: no second read for it


def test_max_file_bytes_zero_reads_nothing_more(gitlab: FakeGitLab) -> None:
    project(gitlab, [modified("many.py", many_hunks())])
    assert fetch(gitlab, max_file_bytes=0)["many.py"].collapsed
    assert reads(gitlab) == ["diffs"]


def test_a_refused_full_read_leaves_the_file_not_reviewed_and_says_why(
        gitlab: FakeGitLab, caplog: pytest.LogCaptureFixture) -> None:
    project(gitlab, [modified("many.py", many_hunks())])
    gitlab.failures.append(("GET", "/raw_diffs", 403))

    change = fetch(gitlab)["many.py"]

    # One unreadable file costs that file, not the whole review: it is listed as not reviewed.
    assert (change.diff, change.collapsed) == ("", True)
    assert limit_reason(change) == ("collapsed by GitLab (diff over its limits): its full text "
                                    "could not be read from GitLab")
    assert "the token may not read the full diff of merge request !1 (403)" in caplog.text


def test_raw_diff_bytes_are_decoded_by_the_one_rule(gitlab: FakeGitLab) -> None:
    body = "".join(f"@@ -{i},1 +{i},1 @@\n-n{i} = 'Jurgen'\n+n{i} = 'J\u00fcrgen'\n"
                   for i in range(1, 400, 2))
    raw = b"diff --git a/names.py b/names.py\n--- a/names.py\n+++ b/names.py\n"
    project(gitlab, [modified("names.py", "", collapsed=True)],
            raw_diff=raw + body.encode("latin-1"))
    assert fetch(gitlab)["names.py"].diff == body  # Latin-1 bytes, read as text: "Jürgen"


def test_modes_arrive_from_gitlab(gitlab: FakeGitLab, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    base = git_commit(repo, None, {"run.sh": b"echo\n", "lib": ("160000", b"1" * 40),
                                   "gone.txt": b"x\n"})
    head = git_commit(repo, base, {"run.sh": ("100755", b"echo\n"), "lib": ("160000", b"2" * 40),
                                   "gone.txt": None, "link": ("120000", b"run.sh")})
    files, raw = files_from_git(repo, base, head)
    project(gitlab, files, raw_diff=raw)
    changes = fetch(gitlab)
    assert {p: (c.old_mode, c.new_mode) for p, c in changes.items()} == {
        "run.sh": ("100644", "100755"), "lib": ("160000", "160000"), "gone.txt": ("100644", None),
        "link": (None, "120000")}
    assert changes["lib"].diff == (f"@@ -1 +1 @@\n-Subproject commit {'1' * 40}\n"
                                   f"+Subproject commit {'2' * 40}\n")


def test_real_git_patch_read_in_any_chunking(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    names = ["a b/c.py", "q\"uote.py", "t\tab.py", "\u00fc.py", "--- x", "crlf.txt"]
    base = git_commit(repo, None, {n: b"1\n2\n3\n" for n in names} | {"old.py": b"a\nb\nc\nd\n"})
    head = git_commit(repo, base, {n: b"1\n2!\n3\n" for n in names} | {
        "crlf.txt": b"1\r\n2\r\n", "old.py": None, "moved/new.py": b"a\nb\nc\nD\n"})
    files, raw = files_from_git(repo, base, head)
    wanted = {(f["old_path"], f["new_path"]) for f in files}
    expected = {(f["old_path"], f["new_path"]): f["diff"] for f in files}
    assert ("old.py", "moved/new.py") in expected and "\r\n" in expected[("crlf.txt",) * 2]
    for size in (1, 7, 4096, len(raw)):
        chunks = [raw[i : i + size] for i in range(0, len(raw), size)]
        assert read_patch(chunks, wanted, 1_000_000).diffs == expected


# -- through the CLI ----------------------------------------------------------------------------

def env(gitlab: FakeGitLab, llm: FakeOpenAI, out: Path, **extra: str) -> dict[str, str]:
    return clean_env(**{
        "CI_SERVER_URL": gitlab.url, "CI_MERGE_REQUEST_PROJECT_ID": "group/app",
        "CI_MERGE_REQUEST_IID": "1", "REVIEWER_GITLAB_TOKEN": TOKEN,
        "REVIEWER_BASE_URL": llm.url, "REVIEWER_MODEL": "m", "REVIEWER_API_KEY": API_KEY,
        "REVIEWER_OUTPUT": str(out)} | extra)


def sent(llm: FakeOpenAI) -> str:
    """Everything the model was shown."""
    return "\n".join(m["content"] for r in llm.requests for m in r["messages"])


def find_on(llm: FakeOpenAI, path: str, line: int, text: str) -> None:
    """The model answers with one finding on a line, in the request that showed that line."""
    def reply(body: dict[str, Any]) -> str:
        shown = text in json.dumps(body["messages"], ensure_ascii=False)
        return answer(findings=[finding(path, line, "major")] if shown else [])
    llm.responder = reply


def test_a_collapsed_files_finding_is_placed_and_posted_on_its_line(
        gitlab: FakeGitLab, llm: FakeOpenAI, tmp_path: Path) -> None:
    mr = project(gitlab, [SMALL, modified("many.py", many_hunks())])
    find_on(llm, "many.py", 10 * 400 + 2, "b400 = 1")
    out = tmp_path / "review.json"

    result = run_cli("review", env=env(gitlab, llm, out))

    assert result.code == 0, result.stderr
    assert "b0 = 1" in sent(llm) and f"b{HUNKS - 1} = 1" in sent(llm)
    review = Review.model_validate_json(out.read_text())
    assert sorted(review.files_reviewed) == ["many.py", "small.py"]
    assert review.skipped_files == []
    assert [(f.path, f.line, f.placed) for f in review.findings] == [("many.py", 4002, True)]
    notes = [d["notes"][0] for d in gitlab.discussions(mr["project_id"], 1)]
    assert [n["position"]["new_line"] for n in notes if n["type"] == "DiffNote"] == [4002]


def test_a_too_large_file_is_reviewed_from_raw_diffs(
        gitlab: FakeGitLab, llm: FakeOpenAI, tmp_path: Path) -> None:
    project(gitlab, [modified("big.py", many_hunks(120))])
    gitlab.max_patch_bytes = 4000
    find_on(llm, "big.py", 10 * 100 + 2, "b100 = 1")
    out = tmp_path / "review.json"

    result = run_cli("review", "--dry-run", env=env(gitlab, llm, out))

    assert result.code == 0, result.stderr
    review = Review.model_validate_json(out.read_text())
    assert review.files_reviewed == ["big.py"]
    assert [(f.path, f.line, f.placed) for f in review.findings] == [("big.py", 1002, True)]


def test_old_gitlab_without_diffs_or_raw_diffs_reviews_a_collapsed_file(
        gitlab: FakeGitLab, llm: FakeOpenAI, tmp_path: Path) -> None:
    project(gitlab, [SMALL, modified("many.py", many_hunks())])
    gitlab.diffs_endpoint = gitlab.raw_diffs_endpoint = False  # GitLab before 15.7
    llm.responder = lambda body: answer()
    out = tmp_path / "review.json"

    result = run_cli("review", "--dry-run", env=env(gitlab, llm, out))

    assert result.code == 0, result.stderr
    assert sorted(Review.model_validate_json(out.read_text()).files_reviewed) == [
        "many.py", "small.py"]
    assert f"b{HUNKS - 1} = 1" in sent(llm)
    assert reads(gitlab) == ["diffs", "changes", "raw_diffs", "changes?raw"]


def test_a_latin1_files_raw_diff_reaches_the_model_as_text(
        gitlab: FakeGitLab, llm: FakeOpenAI, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    lines = [f"name_{i} = 'Jurgen Mueller'\n".encode() for i in range(1200)]
    base = git_commit(repo, None, {"names.py": b"".join(lines)})
    lines[::10] = [f"name_{i} = 'J\u00fcrgen M\u00fcller'\n".encode("latin-1")
                   for i in range(0, 1200, 10)]  # 120 hunks, ~26 KB: collapsed
    head = git_commit(repo, base, {"names.py": b"".join(lines)})
    files, raw = files_from_git(repo, base, head)
    project(gitlab, files, raw_diff=raw)
    llm.responder = lambda body: answer()
    out = tmp_path / "review.json"

    result = run_cli("review", "--dry-run", env=env(gitlab, llm, out))

    assert result.code == 0, result.stderr
    assert Review.model_validate_json(out.read_text()).files_reviewed == ["names.py"]
    assert "raw_diffs" in reads(gitlab)
    assert "name_1190 = 'J\u00fcrgen M\u00fcller'" in sent(llm) and "\ufffd" not in sent(llm)


# review.py builds GitLab(...) without max_file_bytes for now, so the flag does not reach it.
def test_a_file_over_max_file_bytes_is_listed_as_not_reviewed(
        gitlab: FakeGitLab, llm: FakeOpenAI, tmp_path: Path) -> None:
    project(gitlab, [SMALL, modified("many.py", many_hunks())])
    llm.responder = lambda body: answer()
    out = tmp_path / "review.json"

    result = run_cli("review", "--dry-run", "--max-file-bytes", "10000",
                     env=env(gitlab, llm, out))

    assert result.code == 4, result.stderr  # a file that needed review was not reviewed
    review = json.loads(out.read_text())
    assert review["files_reviewed"] == ["small.py"]
    assert review["coverage"]["not_reviewed"] == [{
        "path": "many.py", "reason": "collapsed by GitLab (diff over its limits): its diff is "
                                     "23,638 bytes, over --max-file-bytes 10,000"}]
    assert "many.py: its diff is 23638 bytes, over --max-file-bytes 10000" in result.stderr
    assert "b0 = 1" not in sent(llm)
