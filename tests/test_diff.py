"""Diff parsing, line addressing and file selection, on real unified diff text and real git output.

Every diff here is parsed by the real code (unidiff underneath); nothing is mocked.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from reviewer.diff import (
    Change,
    FileDiff,
    LineKind,
    Skipped,
    exclude_spec,
    parse_change,
    select,
    skip_reason,
    split_patch,
)
from reviewer.localgit import DIFF_OPTIONS
from tests.conftest import clean_env, lines

ADDED, REMOVED, CONTEXT = LineKind.ADDED, LineKind.REMOVED, LineKind.CONTEXT




# Two hunks as GitLab's API returns them: the body from the first "@@", no file header.
TWO_HUNKS = lines(
    "@@ -1,4 +1,5 @@",
    " import os",
    "-import sys",
    "+import re",
    "+import sys",
    " ",
    " def main():",
    "@@ -20,3 +21,2 @@ def main():",
    "     x = 1",
    "-    y = 2",
    "     return x",
)
TWO_HUNKS_TABLE = [
    (CONTEXT, 1, 1, "import os"),
    (REMOVED, 2, None, "import sys"),
    (ADDED, None, 2, "import re"),
    (ADDED, None, 3, "import sys"),
    (CONTEXT, 3, 4, ""),
    (CONTEXT, 4, 5, "def main():"),
    (CONTEXT, 20, 21, "    x = 1"),
    (REMOVED, 21, None, "    y = 2"),
    (CONTEXT, 22, 22, "    return x"),
]
SIMPLE = lines("@@ -1,2 +1,2 @@", " keep", "-old", "+new")


def table(file: FileDiff) -> list[tuple[LineKind, int | None, int | None, str]]:
    return [(ln.kind, ln.old, ln.new, ln.text) for h in file.hunks for ln in h.lines]


def modified(path: str, diff: str = SIMPLE, **flags: bool) -> Change:
    return Change(path, path, diff, **flags)


# --- parse_change ---------------------------------------------------------------------------

def test_parse_change_gives_each_line_its_kind_and_old_and_new_numbers_across_hunks() -> None:
    file = parse_change(modified("app.py", TWO_HUNKS))

    assert table(file) == TWO_HUNKS_TABLE
    assert [(h.old_start, h.new_start) for h in file.hunks] == [(1, 1), (20, 21)]
    assert file.changed_lines == 4


def test_added_lines_have_only_a_new_number_removed_only_an_old_one_context_both() -> None:
    file = parse_change(modified("app.py", TWO_HUNKS))

    for ln in (ln for h in file.hunks for ln in h.lines):
        if ln.kind == ADDED:
            assert ln.old is None and ln.new is not None
        elif ln.kind == REMOVED:
            assert ln.old is not None and ln.new is None
        else:
            assert ln.old is not None and ln.new is not None


def test_no_newline_at_end_of_file_markers_are_dropped_not_counted_as_lines() -> None:
    diff = lines(
        "@@ -1,2 +1,2 @@",
        " first",
        "-last",
        "\\ No newline at end of file",
        "+last, now with a newline",
        "\\ No newline at end of file",
    )

    file = parse_change(modified("notes.txt", diff))

    assert table(file) == [
        (CONTEXT, 1, 1, "first"),
        (REMOVED, 2, None, "last"),
        (ADDED, None, 2, "last, now with a newline"),
    ]


def test_crlf_diff_parses_with_the_same_numbers_and_without_carriage_returns() -> None:
    file = parse_change(modified("app.py", TWO_HUNKS.replace("\n", "\r\n")))

    assert table(file) == TWO_HUNKS_TABLE


def test_lines_that_look_like_file_headers_inside_a_hunk_stay_lines() -> None:
    # A removed SQL comment "-- x" shows as "--- x"; an added "++ y" as "+++ y".
    diff = lines("@@ -1,3 +1,3 @@", " select 1;", "--- old comment", "+++ new", " select 2;")

    file = parse_change(modified("q.sql", diff))

    assert table(file) == [
        (CONTEXT, 1, 1, "select 1;"),
        (REMOVED, 2, None, "-- old comment"),
        (ADDED, None, 2, "++ new"),
        (CONTEXT, 3, 3, "select 2;"),
    ]


def test_a_diff_without_a_final_newline_still_parses() -> None:
    file = parse_change(modified("a.txt", SIMPLE.rstrip("\n")))

    assert table(file)[-1] == (ADDED, None, 2, "new")


@pytest.mark.parametrize(("change", "status", "path"), [
    (Change("new.py", "new.py", lines("@@ -0,0 +1,2 @@", "+a", "+b"), new_file=True),
     "added", "new.py"),
    (Change("gone.py", "gone.py", lines("@@ -1,2 +0,0 @@", "-a", "-b"), deleted_file=True),
     "deleted", "gone.py"),
    (Change("old.py", "new.py", SIMPLE, renamed_file=True), "renamed", "new.py"),
    (Change("old.py", "new.py", SIMPLE), "renamed", "new.py"),
    (Change("same.py", "same.py", SIMPLE), "modified", "same.py"),
], ids=["added", "deleted", "renamed-flag", "renamed-paths", "modified"])
def test_status_and_path_follow_gitlab_change_flags(change: Change, status: str,
                                                    path: str) -> None:
    file = parse_change(change)

    assert file.status == status
    assert file.path == path


def test_a_new_file_has_only_added_lines_and_a_deleted_file_only_removed_ones() -> None:
    added = parse_change(Change("n.py", "n.py", lines("@@ -0,0 +1,2 @@", "+a", "+b"),
                                new_file=True))
    deleted = parse_change(Change("d.py", "d.py", lines("@@ -1,2 +0,0 @@", "-a", "-b"),
                                  deleted_file=True))

    assert table(added) == [(ADDED, None, 1, "a"), (ADDED, None, 2, "b")]
    assert table(deleted) == [(REMOVED, 1, None, "a"), (REMOVED, 2, None, "b")]


# --- line_at --------------------------------------------------------------------------------

def test_line_at_new_side_finds_added_and_context_lines() -> None:
    file = parse_change(modified("app.py", TWO_HUNKS))

    added, context = file.line_at("new", 2), file.line_at("new", 21)

    assert added is not None and (added.kind, added.text) == (ADDED, "import re")
    assert context is not None and (context.kind, context.text) == (CONTEXT, "    x = 1")


def test_line_at_old_side_finds_removed_and_context_lines() -> None:
    file = parse_change(modified("app.py", TWO_HUNKS))

    removed, context = file.line_at("old", 21), file.line_at("old", 20)

    assert removed is not None and (removed.kind, removed.text) == (REMOVED, "    y = 2")
    assert context is not None and (context.kind, context.text) == (CONTEXT, "    x = 1")


def test_line_at_a_context_line_answers_from_both_sides_with_its_own_numbers() -> None:
    file = parse_change(modified("app.py", TWO_HUNKS))

    assert file.line_at("old", 4) == file.line_at("new", 5)
    assert file.line_at("old", 4) is not None


@pytest.mark.parametrize(("side", "number"), [
    ("new", 10),  # between the hunks
    ("old", 10),
    ("new", 400),  # after the last hunk
    ("old", 23),  # old file ends the last hunk at 22
    ("new", 0),
])
def test_line_at_a_line_outside_every_hunk_is_none(side: str, number: int) -> None:
    file = parse_change(modified("app.py", TWO_HUNKS))

    assert file.line_at(side, number) is None


def test_line_at_a_number_that_exists_only_on_the_other_side_is_none() -> None:
    # The first hunk grows the file: new line 5 exists, the old side ends at line 4.
    file = parse_change(modified("app.py", TWO_HUNKS))

    assert file.line_at("new", 5) is not None
    assert file.line_at("old", 5) is None


# --- select: which files are reviewed, and why the others are not ----------------------------

def reason_for(change: Change, excludes: tuple[str, ...] = ()) -> str | None:
    files, skipped = select([change], excludes)
    assert len(files) + len(skipped) == 1
    return skipped[0].reason if skipped else None


def test_excludes_are_gitignore_style_with_directories_globs_and_negation() -> None:
    changes = [modified(p) for p in (
        "docs/guide.rst", "src/docs/notes.py", "README.md", "src/pkg/CHANGES.md", "keep.md",
        "src/keep.md", "src/app.py", "documentation.py",
    )]

    files, skipped = select(changes, ["docs/", "*.md", "!keep.md"])

    assert [f.path for f in files] == ["keep.md", "src/keep.md", "src/app.py", "documentation.py"]
    assert skipped == [Skipped(p, "excluded by --exclude") for p in (
        "docs/guide.rst", "src/docs/notes.py", "README.md", "src/pkg/CHANGES.md")]


def test_an_exclude_matches_the_old_path_of_a_deleted_file() -> None:
    gone = Change("docs/old.rst", "docs/old.rst", lines("@@ -1 +0,0 @@", "-x"),
                  deleted_file=True)

    assert reason_for(gone, ("docs/",)) == "excluded by --exclude"


@pytest.mark.parametrize(("change", "reason"), [
    (modified("big.py", "", too_large=True), "too large for GitLab's diff limits"),
    (modified("huge.py", "", collapsed=True), "collapsed by GitLab (diff over its limits)"),
], ids=["too-large", "collapsed"])
def test_a_file_gitlab_cut_is_not_reviewed_for_a_limit_not_skipped_by_policy(
        change: Change, reason: str) -> None:
    assert skip_reason(change, exclude_spec(())) is None
    assert select([change]) == ([], [Skipped(change.new_path, reason, limit=True)])


@pytest.mark.parametrize(("change", "reason"), [
    (modified("logo.png", "Binary files a/logo.png and b/logo.png differ\n"), "binary file"),
    (modified("font.woff", lines(
        "diff --git a/font.woff b/font.woff", "index 8352675..0099104 100644",
        "GIT binary patch", "literal 3", "KcmZSJWCj2L7yu0b", "", "literal 3",
        "KcmZQzWC8#H2LJ>B")), "binary file"),
], ids=["binary-files-differ", "git-binary-patch"])
def test_skip_reason_for_binaries(change: Change, reason: str) -> None:
    assert reason_for(change) == reason


@pytest.mark.parametrize("path", [
    "package-lock.json", "web/package-lock.json", "poetry.lock", "go.sum", "Cargo.lock",
    "x.lock", "yarn.lock", "Gemfile.lock",
])
def test_lock_files_are_skipped(path: str) -> None:
    assert reason_for(modified(path)) == "lock file"


@pytest.mark.parametrize(("change", "reason"), [
    (modified("src/schema.py", generated=True), "generated file"),
    (modified("static/app.min.js"), "generated file"),
    (modified("api/user_pb2.py"), "generated file"),
    (modified("api/v1/user.pb.go"), "generated file"),
    (Change("src/parser.py", "src/parser.py", lines(
        "@@ -0,0 +1,3 @@", "+# @generated by tools/gen_parser.py", "+", "+TABLE = []"),
        new_file=True), "generated file (marked as generated)"),
    (Change("api/client.go", "api/client.go", lines(
        "@@ -1,4 +1,4 @@", " // Code generated by protoc-gen-go. DO NOT EDIT.", " ",
        " package api", "-var x = 1", "+var x = 2")), "generated file (marked as generated)"),
], ids=["gitlab-flag", "min-js", "pb2-py", "pb-go", "at-generated", "code-generated"])
def test_generated_files_are_skipped(change: Change, reason: str) -> None:
    assert reason_for(change) == reason


def test_generated_marker_counts_only_in_a_files_first_lines() -> None:
    body = ["+# values generated at runtime; do not edit by hand", "+LIMIT = 5", " ", " def f():"]
    at_top = modified("src/limits.py", lines("@@ -1,2 +1,4 @@", *body))
    at_line_50 = modified("src/limits.py", lines("@@ -48,2 +50,4 @@", *body))

    assert reason_for(at_top) == "generated file (marked as generated)"
    assert reason_for(at_line_50) is None


@pytest.mark.parametrize("path", [
    "vendor/github.com/pkg/errors/errors.go", "services/api/vendor/lib.go",
    "node_modules/lodash/index.js", "web/app/node_modules/x/y.js",
    "third_party/zlib/zlib.c", "libs/c/third_party/re2/re2.cc",
])
def test_vendored_code_is_skipped_at_any_depth(path: str) -> None:
    assert reason_for(modified(path)) == "vendored code"


@pytest.mark.parametrize("path", ["src/vendor.py", "src/vendored/x.py", "node_modules.md.txt"])
def test_names_that_only_resemble_vendor_directories_are_reviewed(path: str) -> None:
    assert reason_for(modified(path)) is None


def test_a_rename_without_changes_is_skipped_as_no_textual_changes() -> None:
    assert reason_for(Change("old.py", "new.py", "", renamed_file=True)) == "no textual changes"


def test_a_text_file_that_mentions_binary_files_is_still_reviewed() -> None:
    # Documentation of git's output: a hunk line, not git's own binary marker.
    diff = lines("@@ -1 +1,2 @@", " # Diffs",
                 "+Git prints: Binary files a/x.png and b/x.png differ")

    assert reason_for(modified("docs.txt", diff)) is None


def test_select_never_drops_a_file_silently() -> None:
    changes = [
        modified("src/app.py", TWO_HUNKS),
        modified("README.md"),
        modified("big.py", "", too_large=True),
        modified("huge.py", "", collapsed=True),
        modified("logo.png", "Binary files a/logo.png and b/logo.png differ\n"),
        modified("poetry.lock"),
        modified("app.min.js"),
        modified("vendor/x.go"),
        Change("a.py", "b.py", "", renamed_file=True),
        modified("empty.txt", ""),
        Change("gone.py", "gone.py", lines("@@ -1 +0,0 @@", "-x"), deleted_file=True),
        Change("new.py", "new.py", lines("@@ -0,0 +1 @@", "+x"), new_file=True),
    ]

    files, skipped = select(changes, ["*.md"])

    assert len(files) + len(skipped) == len(changes)
    assert sorted([f.path for f in files] + [s.path for s in skipped]) == sorted(
        c.old_path if c.deleted_file else c.new_path for c in changes)
    assert [f.path for f in files] == ["src/app.py", "gone.py", "new.py"]
    assert all(s.reason for s in skipped)
    assert Skipped("empty.txt", "empty diff") in skipped


# --- split_patch on real git output -----------------------------------------------------------

def git(cwd: Path, *args: str) -> str:
    env = clean_env(GIT_AUTHOR_NAME="Test", GIT_AUTHOR_EMAIL="test@example.com",
                    GIT_COMMITTER_NAME="Test", GIT_COMMITTER_EMAIL="test@example.com",
                    GIT_CONFIG_NOSYSTEM="1", HOME=str(cwd))
    return subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          check=True).stdout


@pytest.fixture
def patch(tmp_path: Path) -> str:
    """`git diff` of a commit against a working tree with every kind of change staged."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "--quiet")
    (repo / "mod.txt").write_text("a\nb\nc\n")
    (repo / "del.txt").write_text("x\ny\n")
    (repo / "moved.txt").write_text("".join(f"line {i}\n" for i in range(1, 21)))
    (repo / "edited.txt").write_text("".join(f"row {i}\n" for i in range(1, 21)))
    (repo / "img.bin").write_bytes(b"\x00\x01\x02")
    (repo / "café.txt").write_text("a\n")
    git(repo, "add", "-A")
    git(repo, "commit", "--quiet", "-m", "base")

    (repo / "mod.txt").write_text("a\nB\nc\n")
    (repo / "del.txt").unlink()
    (repo / "moved.txt").rename(repo / "renamed.txt")
    (repo / "edited.txt").unlink()
    (repo / "edited_and_renamed.txt").write_text(
        "".join(f"row {i}\n" if i != 10 else "row ten\n" for i in range(1, 21)))
    (repo / "img.bin").write_bytes(b"\x00\x09\x03")
    (repo / "new.bin").write_bytes(b"\x00\x05")
    (repo / "added.txt").write_text("new\n")
    (repo / "café.txt").write_text("a\nb\n")
    git(repo, "add", "-A")
    return git(repo, "diff", *DIFF_OPTIONS, "HEAD")


def test_split_patch_yields_one_change_per_file_with_gits_flags(patch: str) -> None:
    changes = {c.new_path: c for c in split_patch(patch)}

    flags = {path: (c.old_path, c.new_file, c.deleted_file, c.renamed_file)
             for path, c in changes.items()}
    assert flags == {
        "added.txt": ("added.txt", True, False, False),
        "del.txt": ("del.txt", False, True, False),
        "mod.txt": ("mod.txt", False, False, False),
        "renamed.txt": ("moved.txt", False, False, True),
        "edited_and_renamed.txt": ("edited.txt", False, False, True),
        "img.bin": ("img.bin", False, False, False),
        "new.bin": ("new.bin", True, False, False),
        "café.txt": ("café.txt", False, False, False),
    }


def test_split_patch_changes_select_and_parse_like_gitlab_ones(patch: str) -> None:
    files, skipped = select(split_patch(patch))

    by_path = {f.path: f for f in files}
    assert {p: f.status for p, f in by_path.items()} == {
        "added.txt": "added", "del.txt": "deleted", "mod.txt": "modified",
        "edited_and_renamed.txt": "renamed", "café.txt": "modified",
    }
    assert sorted(skipped, key=lambda s: s.path) == [
        Skipped("img.bin", "binary file"), Skipped("new.bin", "binary file"),
        Skipped("renamed.txt", "no textual changes"),
    ]
    assert table(by_path["mod.txt"]) == [
        (CONTEXT, 1, 1, "a"), (REMOVED, 2, None, "b"), (ADDED, None, 2, "B"),
        (CONTEXT, 3, 3, "c")]
    assert table(by_path["del.txt"]) == [(REMOVED, 1, None, "x"), (REMOVED, 2, None, "y")]
    renamed = by_path["edited_and_renamed.txt"]
    assert renamed.old_path == "edited.txt"
    assert [(ln.kind, ln.old, ln.new, ln.text) for ln in renamed.hunks[0].lines
            if ln.kind != CONTEXT] == [(REMOVED, 10, None, "row 10"), (ADDED, None, 10, "row ten")]


@pytest.mark.parametrize(("change", "reason"), [
    (Change("img/logo.PNG", "img/logo.PNG", "", new_file=True), "binary file"),
    (Change("app.jar", "app.jar", ""), "binary file"),
    (Change("empty.py", "empty.py", "", new_file=True), "empty file"),
    (Change("gone.txt", "gone.txt", "", deleted_file=True), "empty file"),
    (Change("a.py", "b.py", "", renamed_file=True), "no textual changes"),
    (Change("mode.sh", "mode.sh", ""), "empty diff"),
])
def test_a_file_without_hunks_gets_the_most_specific_reason(change: Change, reason: str) -> None:
    assert select([change])[1] == [Skipped(change.old_path if change.deleted_file
                                           else change.new_path, reason)]


# --- kinds of change that are not code: submodules, symlinks, LFS pointers, modes --------------

OLD_SHA, NEW_SHA = "1a2b3c4d5e6f" + "0" * 28, "5d6e7f809a1b" + "f" * 28
LFS = ("version https://git-lfs.github.com/spec/v1",
       "oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393",
       "size 12345")


def skipped_by_policy(change: Change) -> Skipped:
    files, skipped = select([change])
    assert files == [] and len(skipped) == 1 and not skipped[0].limit
    return skipped[0]


@pytest.mark.parametrize(("change", "reason"), [
    (Change("libs/ui", "libs/ui", lines("@@ -1 +1 @@", f"-Subproject commit {OLD_SHA}",
                                        f"+Subproject commit {NEW_SHA}"),
            old_mode="160000", new_mode="160000"), "submodule libs/ui moved 1a2b3c4..5d6e7f8"),
    (Change("libs/ui", "libs/ui", lines("@@ -0,0 +1 @@", f"+Subproject commit {NEW_SHA}"),
            new_file=True, old_mode="0", new_mode="160000"), "submodule libs/ui added at 5d6e7f8"),
    (Change("libs/ui", "libs/ui", lines("@@ -1 +0,0 @@", f"-Subproject commit {OLD_SHA}"),
            deleted_file=True, old_mode="160000", new_mode="0"),
     "submodule libs/ui removed (was at 1a2b3c4)"),
    (Change("libs/ui", "libs/ui", lines("@@ -1 +1 @@", f"-Subproject commit {OLD_SHA}",
                                        f"+Subproject commit {NEW_SHA}")),
     "submodule libs/ui moved 1a2b3c4..5d6e7f8"),
], ids=["moved", "added", "removed", "no-modes-gitlab-diff-only"])
def test_a_submodule_change_is_skipped_naming_both_commits(change: Change, reason: str) -> None:
    assert skipped_by_policy(change) == Skipped("libs/ui", reason)


def test_a_text_file_that_adds_a_subproject_line_among_others_is_reviewed() -> None:
    diff = lines("@@ -1 +1,2 @@", " notes", f"+Subproject commit {NEW_SHA}")

    assert reason_for(modified("notes.txt", diff)) is None


@pytest.mark.parametrize("change", [
    Change("big.psd", "big.psd", lines("@@ -0,0 +1,3 @@", *(f"+{ln}" for ln in LFS)),
           new_file=True, old_mode="0", new_mode="100644"),
    modified("data/model.bin", lines("@@ -1,3 +1,3 @@", f" {LFS[0]}", "-oid sha256:00ff",
                                     f"+{LFS[1]}", "-size 1", f"+{LFS[2]}")),
    Change("old.zip", "old.zip", lines("@@ -1,3 +0,0 @@", *(f"-{ln}" for ln in LFS)),
           deleted_file=True),
    modified("crlf.bin", lines("@@ -0,0 +1,3 @@", *(f"+{ln}\r" for ln in LFS))),
], ids=["added", "modified", "deleted", "crlf"])
def test_a_git_lfs_pointer_is_skipped_not_sent_as_code(change: Change) -> None:
    assert skipped_by_policy(change).reason == "Git LFS pointer"


def test_a_file_that_only_quotes_an_lfs_pointer_is_reviewed() -> None:
    diff = lines("@@ -0,0 +1,4 @@", "+# How a pointer looks:", *(f"+{ln}" for ln in LFS))

    assert reason_for(Change("docs/lfs.md", "docs/lfs.md", diff, new_file=True)) is None


@pytest.mark.parametrize(("change", "reason"), [
    (Change("run.sh", "run.sh", "", old_mode="100644", new_mode="100755"),
     "mode changed 100644 → 100755"),
    (Change("run.sh", "run.sh", "", old_mode="100755", new_mode="100644"),
     "mode changed 100755 → 100644"),
    (Change("old.sh", "bin/new.sh", "", renamed_file=True, old_mode="100644",
            new_mode="100755"), "no textual changes, mode changed 100644 → 100755"),
    (Change("img.png", "img.png", "", old_mode="100644", new_mode="100755"),
     "mode changed 100644 → 100755"),
    (Change("copy.py", "copy.py", "", old_mode="100644", new_mode="100644"), "empty diff"),
], ids=["executable", "not-executable", "renamed", "binary-name", "same-mode"])
def test_a_mode_only_change_says_which_modes_not_empty_diff(change: Change, reason: str) -> None:
    assert skipped_by_policy(change).reason == reason


def test_a_mode_change_with_edits_is_reviewed() -> None:
    change = Change("run.sh", "run.sh", SIMPLE, old_mode="100644", new_mode="100755")

    assert reason_for(change) is None


@pytest.mark.parametrize(("change", "reason"), [
    (Change("conf", "conf", lines("@@ -0,0 +1 @@", "+../shared/conf.yml",
                                  "\\ No newline at end of file"),
            new_file=True, old_mode="0", new_mode="120000"), "symlink to ../shared/conf.yml"),
    (Change("conf", "conf", lines("@@ -1 +1 @@", "-a.yml", "\\ No newline at end of file",
                                  "+b.yml", "\\ No newline at end of file"),
            old_mode="120000", new_mode="120000"), "symlink to b.yml (was to a.yml)"),
    (Change("conf", "conf", lines("@@ -1 +0,0 @@", "-a.yml", "\\ No newline at end of file"),
            deleted_file=True, old_mode="120000", new_mode="0"), "symlink to a.yml (deleted)"),
    (Change("conf", "conf", lines("@@ -1,2 +1 @@", "-x = 1", "-y = 2", "+a.yml",
                                  "\\ No newline at end of file"),
            old_mode="100644", new_mode="120000"), "symlink to a.yml"),
], ids=["added", "retargeted", "deleted", "file-became-link"])
def test_a_symlink_is_skipped_naming_its_target(change: Change, reason: str) -> None:
    assert skipped_by_policy(change) == Skipped("conf", reason)


def test_a_symlink_replaced_by_a_regular_file_is_reviewed() -> None:
    change = Change("conf", "conf", lines("@@ -1 +1,2 @@", "-a.yml",
                                          "\\ No newline at end of file", "+x = 1", "+y = 2"),
                    old_mode="120000", new_mode="100644")

    assert reason_for(change) is None


def test_an_exclude_still_wins_over_the_kind_of_change() -> None:
    change = Change("libs/ui", "libs/ui", "", old_mode="160000", new_mode="160000")

    assert reason_for(change, ("libs/",)) == "excluded by --exclude"


def test_parse_change_takes_names_from_the_change_never_from_header_lines() -> None:
    # A whole git section whose names look like headers: only the hunks are read.
    section = lines("diff --git a/--- x b/--- x", "index 1..2 100644", "--- a/--- x\t",
                    "+++ b/--- x\t", "@@ -1 +1 @@", "--- old", "+++ new")

    file = parse_change(modified("--- x", section))

    assert (file.old_path, file.new_path) == ("--- x", "--- x")
    assert table(file) == [(REMOVED, 1, None, "-- old"), (ADDED, None, 1, "++ new")]


def test_split_patch_of_a_plain_unified_diff_without_git_headers() -> None:
    patch = lines("--- a/app.py\t2024-01-01", "+++ b/app.py\t2024-01-02", "@@ -1 +1 @@",
                  "-a", "+b", "--- /dev/null", "+++ b/new.py", "@@ -0,0 +1 @@", "+x")

    changes = split_patch(patch)

    assert [(c.old_path, c.new_path, c.new_file) for c in changes] == [
        ("app.py", "app.py", False), ("new.py", "new.py", True)]
    assert [f.path for f in select(changes)[0]] == ["app.py", "new.py"]


def test_split_patch_reads_a_copy_as_a_copy_of_its_source() -> None:
    patch = lines("diff --git a/src.py b/dst.py", "similarity index 90%", "copy from src.py",
                  "copy to dst.py", "index 1..2 100644", "--- a/src.py", "+++ b/dst.py",
                  "@@ -1 +1 @@", "-a", "+b",
                  "diff --git a/x.py b/y.py", "similarity index 100%", "copy from x.py",
                  "copy to y.py")

    edited, pure = split_patch(patch)

    assert (edited.old_path, edited.new_path, edited.copied_file) == ("src.py", "dst.py", True)
    assert parse_change(edited).status == "copied"
    assert skipped_by_policy(pure) == Skipped("y.py", "copied from x.py, no textual changes")
