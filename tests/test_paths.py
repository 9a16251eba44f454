"""Every file name comes out as itself, for every kind of change, in both local modes.

A table of awkward names (spaces, " b/" inside a name, text that looks like git's own header
lines, quotes, tabs, backslashes, a newline, UTF-8 and Latin-1 bytes) crossed with every kind of
change git prints (added, deleted, modified, renamed with and without edits, mode-only, binary,
empty, symlink, copy, a file that became a symlink and back), committed in a real repository
and left in its working tree. The paths in review.json must be the real names, each file
reviewed or skipped with its reason.
"""

from __future__ import annotations

import os
import subprocess
from hashlib import sha256
from pathlib import Path

import pytest

from reviewer.diff import select, split_patch
from reviewer.localgit import DIFF_OPTIONS, read_change
from reviewer.model import Review
from tests.conftest import answer, clean_env, run_cli
from tests.openai_standin import FakeOpenAI

# id: (the name's bytes on disk, the name review.json must show)
NAMES: dict[str, tuple[bytes, str]] = {
    "plain": (b"plain.py", "plain.py"),
    "space-b-slash": (b" b/x", " b/x"),
    "spaces": (b"a b/c d", "a b/c d"),
    "dashes": (b"--- x", "--- x"),
    "diff-git": (b"diff --git", "diff --git"),
    "quotes": (b'"q"', '"q"'),
    "tab": (b"tab\there", "tab\there"),
    "backslash": (b"back\\slash", "back\\slash"),
    "newline": (b"new\nline", "new\nline"),
    "utf-8": ("ünï".encode(), "ünï"),
    "latin-1": (b"J\xfcrgen.py", "Jürgen.py"),  # read as Latin-1: every byte a character
}
LINK_TARGET = "target.txt"
REVIEWED_KINDS = ("added", "deleted", "modified", "renamed-to", "copy", "link-to-file")
SKIPPED_KINDS = {"moved-to": "no textual changes", "mode": "mode changed 100644 → 100755",
                 "binary": "binary file", "empty": "empty file",
                 "link": f"symlink to {LINK_TARGET}", "file-to-link": f"symlink to {LINK_TARGET}"}


def git(repo: Path, *args: str) -> str:
    env = clean_env(GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.com",
                    GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.com",
                    GIT_CONFIG_NOSYSTEM="1", HOME=str(repo.parent))
    return subprocess.run(["git", *args], cwd=repo, env=env, check=True,
                          capture_output=True).stdout.decode("utf-8", "replace").strip()


def at(repo: Path, kind: str, name: bytes) -> Path:
    return repo / os.fsdecode(kind.encode() + b"/" + name)


def write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def rows(kind: str, ident: str, changed: int | None = None) -> bytes:
    """Ten lines unique to this file, so git pairs renames only with their own file.

    Lines that differ only in a word or two are similar enough for git's rename scoring to pair
    unrelated files across a large change: hashes share nothing. Line 6 is blank, so hunks
    have an empty context line (which diff.suppressBlankEmpty would print as "").
    """
    return "".join("edited\n" if i == changed else "\n" if i == 6 else
                   f"{sha256(f'{kind}/{ident}/{i}'.encode()).hexdigest()}\n"
                   for i in range(1, 11)).encode()


def base_files(repo: Path, ident: str, name: bytes) -> None:
    for kind in ("deleted", "modified", "renamed-from", "moved-from", "mode", "source",
                 "file-to-link"):
        write(at(repo, kind, name), rows(kind, ident))
    write(at(repo, "binary", name), b"\x00\x01" + ident.encode())
    at(repo, "link-to-file", name).parent.mkdir(parents=True, exist_ok=True)
    at(repo, "link-to-file", name).symlink_to(LINK_TARGET)


def change_files(repo: Path, ident: str, name: bytes) -> None:
    """Every kind of change to one name, in the working tree (renames through git mv)."""
    write(at(repo, "added", name), rows("added", ident))
    at(repo, "deleted", name).unlink()
    write(at(repo, "modified", name), rows("modified", ident, changed=3))
    for old, new in (("renamed-from", "renamed-to"), ("moved-from", "moved-to")):
        at(repo, new, name).parent.mkdir(parents=True, exist_ok=True)
        git(repo, "mv", "--", os.fsdecode(old.encode() + b"/" + name),
            os.fsdecode(new.encode() + b"/" + name))
    write(at(repo, "renamed-to", name), rows("renamed-from", ident, changed=5))
    at(repo, "mode", name).chmod(0o755)
    write(at(repo, "binary", name), b"\x00\x02" + ident.encode())
    write(at(repo, "empty", name), b"")
    at(repo, "link", name).parent.mkdir(parents=True, exist_ok=True)
    at(repo, "link", name).symlink_to(LINK_TARGET)
    write(at(repo, "copy", name), rows("source", ident))  # git -M: a copy is a new file
    at(repo, "file-to-link", name).unlink()  # a change of type: one change, as GitLab shows it
    at(repo, "file-to-link", name).symlink_to(LINK_TARGET)
    at(repo, "link-to-file", name).unlink()
    write(at(repo, "link-to-file", name), rows("link-to-file", ident))


def table_repo(root: Path, idents: list[str], committed: bool) -> Path:
    """A repository with every kind of change to every name: committed on `feature`, or not."""
    repo = root / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    for ident in idents:
        base_files(repo, ident, NAMES[ident][0])
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "base")
    git(repo, "checkout", "-qb", "feature")
    for ident in idents:
        change_files(repo, ident, NAMES[ident][0])
    if committed:
        git(repo, "add", "-A")
        git(repo, "commit", "-qm", "every kind of change")
    return repo


def expected(idents: list[str]) -> tuple[list[str], dict[str, str]]:
    reviewed = sorted(f"{kind}/{NAMES[i][1]}" for i in idents for kind in REVIEWED_KINDS)
    skipped = {f"{kind}/{NAMES[i][1]}": reason for i in idents
               for kind, reason in SKIPPED_KINDS.items()}
    return reviewed, skipped


# --- in process: one name at a time, so a failure names the name ----------------------------

@pytest.mark.parametrize("committed", [True, False], ids=["committed-range", "working-tree"])
@pytest.mark.parametrize("ident", NAMES)
def test_each_name_keeps_its_path_through_every_kind_of_change(tmp_path: Path, ident: str,
                                                               committed: bool) -> None:
    repo = table_repo(tmp_path, [ident], committed)

    local = read_change(repo, "main", "feature" if committed else None)
    files, skipped = select(local.changes)

    assert (sorted(f.path for f in files), {s.path: s.reason for s in skipped}) == \
        expected([ident])
    assert not any(s.limit for s in skipped)
    renamed = next(f for f in files if f.path.startswith("renamed-to/"))
    assert (renamed.status, renamed.old_path) == ("renamed", f"renamed-from/{NAMES[ident][1]}")
    deleted = next(f for f in files if f.path.startswith("deleted/"))
    assert deleted.status == "deleted"


# --- the real CLI: all names in one change ---------------------------------------------------

@pytest.mark.parametrize("committed", [True, False], ids=["committed-range", "working-tree"])
def test_review_json_lists_every_awkward_name_as_itself(tmp_path: Path, llm: FakeOpenAI,
                                                        committed: bool) -> None:
    repo = table_repo(tmp_path, list(NAMES), committed)
    llm.responder = lambda body: answer()
    out = tmp_path / "review.json"

    result = run_cli("review", "--local", "--base", "main",
                     *(["--head", "feature"] if committed else []),
                     "--base-url", llm.url, "--model", "m", "-o", str(out), cwd=repo)

    assert result.code == 0, result.stderr
    review = Review.model_validate_json(out.read_text(encoding="utf-8"))
    assert (sorted(review.files_reviewed),
            {s.path: s.reason for s in review.skipped_files}) == expected(list(NAMES))


# --- git's header forms, read without a repository ------------------------------------------

def test_split_patch_reads_quoted_names_in_every_header_form() -> None:
    patch = (b'diff --git "a/\\"q\\"" "b/\\"r\\""\nsimilarity index 100%\n'
             b'rename from "\\"q\\""\nrename to "\\"r\\""\n'
             b'diff --git a/ b/x b/ b/x\nold mode 100644\nnew mode 100755\n'
             b'diff --git "a/tab\\there" "b/tab\\there"\nindex 1..2 100644\n'
             b'Binary files "a/tab\\there" and "b/tab\\there" differ\n'
             b'diff --git a/a b/c d b/a b/c d\nnew file mode 100644\nindex 0..1\n'
             b'--- /dev/null\n+++ b/a b/c d\t\n@@ -0,0 +1 @@\n+x\n'
             b'diff --git "a/J\\374rgen" "b/J\\374rgen"\ndeleted file mode 100755\n'
             b'index 1..0\n--- "a/J\\374rgen"\n+++ /dev/null\n@@ -1 +0,0 @@\n-x\n')

    changes = split_patch(patch)

    assert [(c.old_path, c.new_path, c.old_mode, c.new_mode) for c in changes] == [
        ('"q"', '"r"', None, None), (" b/x", " b/x", "100644", "100755"),
        ("tab\there", "tab\there", "100644", "100644"), ("a b/c d", "a b/c d", None, "100644"),
        ("Jürgen", "Jürgen", "100755", None)]
    assert [(c.new_file, c.deleted_file, c.renamed_file) for c in changes] == [
        (False, False, True), (False, False, False), (False, False, False),
        (True, False, False), (False, True, False)]
    assert changes[3].diff == "@@ -0,0 +1 @@\n+x\n"


def test_user_config_that_changes_gits_output_changes_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = table_repo(tmp_path, ["spaces", "utf-8"], committed=True)
    plain = split_patch(git_bytes(repo, "diff", *DIFF_OPTIONS, "main", "feature"))
    (tmp_path / "attributes").write_text("* diff=upper\n")
    config = tmp_path / "hostile.gitconfig"
    config.write_text(
        "[diff]\n\tnoprefix = true\n\tmnemonicPrefix = true\n\trenames = copies\n"
        "\tsubmodule = log\n\trelative = true\n\tsuppressBlankEmpty = true\n"
        "\texternal = false\n\tcontext = 9\n[diff \"upper\"]\n\ttextconv = tr a-z A-Z\n"
        f"[core]\n\tquotePath = false\n\tattributesFile = {tmp_path / 'attributes'}\n"
        "[color]\n\tui = always\n[log]\n\tshowSignature = true\n")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(config))

    local = read_change(repo, "main", "feature")

    assert local.changes == tuple(plain)
    assert local.title == "every kind of change"


def git_bytes(repo: Path, *args: str) -> bytes:
    env = clean_env(GIT_CONFIG_NOSYSTEM="1", HOME=str(repo.parent))
    return subprocess.run(["git", *args], cwd=repo, env=env, check=True,
                          capture_output=True).stdout
