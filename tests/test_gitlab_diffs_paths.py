"""Unusual file names come out of GitLab exactly, for every kind of change, through the CLI.

Each merge request is made by real git (tests.gitlab_standin.files_from_git): GitLab's JSON
names files exactly, while its raw diff quotes unusual names C-style, ends names holding a space
with a tab, and may carry names that look like git's own header lines. The review artifact must
name every file exactly once, exactly as GitLab does.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import API_KEY, TOKEN, answer, clean_env, run_cli
from tests.gitlab_standin import Entry, FakeGitLab, files_from_git, git_commit
from tests.openai_standin import FakeOpenAI

NAMES = ["with space.py", 'quote"d.py', "tab\there.py", "back\\slash.py", "na\u00efve-\u00fc.py",
         "\u65e5\u672c\u8a9e.py", "dir b/x.py", "--- x.py", "+++ y.py", "diff --git x.py",
         "@@ -1 +1 @@.py", "a/b.py", "b/a.py", "new\nline.py", "cr\rname.py"]


def text(name: str, changed: bool = False) -> bytes:
    """Eight lines only this file has, so git pairs each rename with its own file."""
    rows = [f"row {k} of {name!r}\n" for k in range(8)]
    if changed:
        rows[4] = f"changed row of {name!r}\n"
    return "".join(rows).encode()


def moved(name: str) -> str:
    return f"moved/{name}"


# kind -> (base tree, head changes, the path the review names) for one file name
KINDS: dict[str, Any] = {
    "added": lambda n: ({}, {n: text(n)}, n),
    "deleted": lambda n: ({n: text(n)}, {n: None}, n),
    "modified": lambda n: ({n: text(n)}, {n: text(n, True)}, n),
    "renamed": lambda n: ({n: text(n)}, {n: None, moved(n): text(n, True)}, moved(n)),
    "renamed only": lambda n: ({n: text(n)}, {n: None, moved(n): text(n)}, moved(n)),
    "mode only": lambda n: ({n: text(n)}, {n: ("100755", text(n))}, n),
    "binary": lambda n: ({n: b"\0" + text(n)}, {n: b"\0\1" + text(n)}, n),
}
REVIEWED = ("added", "deleted", "modified", "renamed")


def merge_request(gitlab: FakeGitLab, tmp_path: Path, kind: str) -> dict[str, str]:
    """A merge request of every name changed one way; returns path named -> its name."""
    base: dict[str, Entry] = {"keep.txt": b"so the first tree is never empty\n"}
    head: dict[str, Entry] = {}
    named = {}
    for name in NAMES:
        before, after, path = KINDS[kind](name)
        base |= before
        head |= after
        named[path] = name
    repo = tmp_path / "repo"
    first = git_commit(repo, None, base)
    files, raw = files_from_git(repo, first, git_commit(repo, first, head))
    assert sorted(f["new_path"] if not f["deleted_file"] else f["old_path"] for f in files) \
        == sorted(named)  # git made one change per name
    gitlab.add_user("reviewer-bot", TOKEN)
    created = gitlab.add_project("group/app")
    gitlab.add_merge_request(created["id"], iid=1, title=kind, files=files, raw_diff=raw)
    return named


def review(gitlab: FakeGitLab, llm: FakeOpenAI, tmp_path: Path) -> tuple[int, dict[str, Any]]:
    llm.responder = lambda body: answer()
    out = tmp_path / "review.json"
    result = run_cli("review", "--dry-run", env=clean_env(
        CI_SERVER_URL=gitlab.url, CI_MERGE_REQUEST_PROJECT_ID="group/app",
        CI_MERGE_REQUEST_IID="1", REVIEWER_GITLAB_TOKEN=TOKEN, REVIEWER_BASE_URL=llm.url,
        REVIEWER_MODEL="m", REVIEWER_API_KEY=API_KEY, REVIEWER_OUTPUT=str(out)))
    assert "Traceback" not in result.stderr and result.code in (0, 4), result.stderr
    return result.code, json.loads(out.read_text())


def accounted(artifact: dict[str, Any]) -> list[tuple[str, str]]:
    """Every file the artifact names, with where: reviewed, or the reason it was not."""
    not_reviewed = (artifact.get("coverage") or {}).get("not_reviewed") or []
    return sorted([(p, "reviewed") for p in artifact["files_reviewed"]]
                  + [(s["path"], s["reason"]) for s in artifact["skipped_files"]]
                  + [(s["path"], s["reason"]) for s in not_reviewed])


def sent(llm: FakeOpenAI) -> str:
    return "\n".join(m["content"] for r in llm.requests for m in r["messages"])


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_name_is_named_exactly_for_every_kind_of_change(
        gitlab: FakeGitLab, llm: FakeOpenAI, tmp_path: Path, kind: str) -> None:
    named = merge_request(gitlab, tmp_path, kind)

    code, artifact = review(gitlab, llm, tmp_path)

    found = accounted(artifact)
    assert sorted(p for p, _ in found) == sorted(named)  # each exactly once, none mangled
    if kind in REVIEWED:
        assert (code, found) == (0, [(p, "reviewed") for p in sorted(named)])
    elif kind == "binary":
        assert all("binary" in why for _, why in found), found
    elif kind == "mode only":
        assert {why for _, why in found} == {"mode changed 100644 → 100755"}, found
    else:  # renamed only
        assert {why for _, why in found} == {"no textual changes"}, found


@pytest.mark.parametrize("kind", REVIEWED)
def test_every_name_survives_the_raw_diff_of_collapsed_files(
        gitlab: FakeGitLab, llm: FakeOpenAI, tmp_path: Path, kind: str) -> None:
    named = merge_request(gitlab, tmp_path, kind)
    gitlab.max_patch_bytes = 1000  # an admin's low limit: every file here is collapsed

    code, artifact = review(gitlab, llm, tmp_path)

    assert (code, accounted(artifact)) == (0, [(p, "reviewed") for p in sorted(named)])
    assert [r.path.rsplit("/", 1)[-1] for r in gitlab.requests if "diffs" in r.path] == [
        "diffs", "raw_diffs"]  # all read from the raw diff, none from /changes
    shown = "added" if kind == "added" else "deleted" if kind == "deleted" else "changed"
    for name in named.values():
        line = f"row 4 of {name!r}" if shown != "changed" else f"changed row of {name!r}"
        assert line in sent(llm), name


def test_every_name_survives_changes_with_access_raw_diffs(
        gitlab: FakeGitLab, llm: FakeOpenAI, tmp_path: Path) -> None:
    named = merge_request(gitlab, tmp_path, "renamed")
    gitlab.max_patch_bytes = 1000
    gitlab.raw_diffs_endpoint = False  # GitLab before 17.9

    code, artifact = review(gitlab, llm, tmp_path)

    assert (code, accounted(artifact)) == (0, [(p, "reviewed") for p in sorted(named)])
    assert any(r.query.get("access_raw_diffs") == "true" for r in gitlab.requests)


LFS = "version https://git-lfs.github.com/spec/v1\noid sha256:{}\nsize {}\n"


def test_submodules_symlinks_lfs_pointers_and_modes_are_each_accounted_for(
        gitlab: FakeGitLab, llm: FakeOpenAI, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    first = git_commit(repo, None, {
        "lib dir/sub": ("160000", b"1" * 40), "link to": ("120000", b"old target"),
        "big asset.bin": LFS.format("a" * 64, 10).encode(), "run me.sh": b"echo 1\n"})
    files, raw = files_from_git(repo, first, git_commit(repo, first, {
        "lib dir/sub": ("160000", b"2" * 40), "new sub": ("160000", b"3" * 40),
        "link to": ("120000", b"new target"), "new link": ("120000", b"x y"),
        "big asset.bin": LFS.format("b" * 64, 20).encode(),
        "run me.sh": ("100755", b"echo 2\n")}))
    gitlab.add_user("reviewer-bot", TOKEN)
    created = gitlab.add_project("group/app")
    gitlab.add_merge_request(created["id"], iid=1, title="kinds", files=files, raw_diff=raw)

    code, artifact = review(gitlab, llm, tmp_path)

    found = accounted(artifact)
    assert sorted(p for p, _ in found) == ["big asset.bin", "lib dir/sub", "link to", "new link",
                                           "new sub", "run me.sh"]
    assert code == 0
    assert found == [("big asset.bin", "Git LFS pointer"),
                     ("lib dir/sub", "submodule lib dir/sub moved 1111111..2222222"),
                     ("link to", "symlink to new target (was to old target)"),
                     ("new link", "symlink to x y"),
                     ("new sub", "submodule new sub added at 3333333"),
                     ("run me.sh", "reviewed")]
    assert artifact["coverage"]["files_not_reviewed"] == 0
