"""Why a change is not reviewed by policy: what it is (submodule, symlink, Git LFS pointer, mode
change, binary, lock, generated, vendored) rather than code to read.

The kinds are recognised from git's file modes (GitLab's `a_mode`/`b_mode`; git's `old mode`,
`new mode` and `index` header lines) and from the diff text, which GitLab and git both send:

- a submodule (gitlink, mode 160000) diff is `-Subproject commit <sha>` / `+Subproject commit
  <sha>` (git prints this with `--submodule=short`, GitLab always does);
- a symlink (mode 120000) diff has the link target as its one line of "content";
- a Git LFS pointer is a small text file: `version https://git-lfs.github.com/spec/v1`, then
  `oid sha256:<hex>` and `size <bytes>` lines (github.com/git-lfs/git-lfs docs/spec.md).
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

import pathspec

if TYPE_CHECKING:
    from reviewer.diff import Change

LOCK_FILES = frozenset({
    "package-lock.json", "npm-shrinkwrap.json", "yarn.lock", "pnpm-lock.yaml", "bun.lockb",
    "poetry.lock", "pipfile.lock", "uv.lock", "pdm.lock", "cargo.lock", "gemfile.lock",
    "composer.lock", "go.sum", "mix.lock", "pubspec.lock", "podfile.lock", "packages.lock.json",
    "flake.lock", "gradle.lockfile",
})
BINARY_SUFFIXES = frozenset({
    ".png", ".jpg", ".jpeg", ".gif", ".bmp", ".ico", ".webp", ".tiff", ".pdf", ".zip", ".gz",
    ".tgz", ".bz2", ".xz", ".7z", ".jar", ".war", ".class", ".so", ".dll", ".dylib", ".exe",
    ".bin", ".woff", ".woff2", ".ttf", ".otf", ".eot", ".mp3", ".mp4", ".mov", ".wav", ".ogg",
    ".sqlite", ".db", ".pyc", ".whl", ".parquet",
})
GENERATED = pathspec.GitIgnoreSpec.from_lines([
    "*.min.js", "*.min.css", "*.map", "*_pb2.py", "*_pb2_grpc.py", "*.pb.go", "*.pb.cc",
    "*.pb.h", "*.generated.*", "*.g.dart", "*.designer.cs", "__snapshots__/", "*.snap",
])
VENDORED = pathspec.GitIgnoreSpec.from_lines([
    "vendor/", "vendors/", "node_modules/", "third_party/", "third-party/", "bower_components/",
    ".yarn/", "Pods/",
])
GENERATED_MARKER = re.compile(r"@generated|do not edit|auto-?generated (by|from|file)",
                              re.IGNORECASE)
FIRST_HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+(\d+)", re.MULTILINE)
BINARY_MARKER = re.compile(r"^(?:Binary files .* differ|GIT binary patch)", re.MULTILINE)
SUBMODULE, SYMLINK = "160000", "120000"
SUBPROJECT = re.compile(r"^([-+])Subproject commit ([0-9a-f]{7,64})(-dirty)?\s*$", re.MULTILINE)
LFS_VERSIONS = ("version https://git-lfs.github.com/spec/v1",
                "version https://hawser.github.com/spec/v1")  # the spec's pre-release name
NO_MODE = ("", "0", "000000")


def mode(value: str | None) -> str | None:
    """A git file mode, or None for "no file on this side" (GitLab sends "0")."""
    return None if value is None or value.strip() in NO_MODE else value.strip()


def special_reason(change: Change, path: str) -> str | None:
    """Why a submodule, symlink or Git LFS pointer change is not reviewed, or None."""
    # The side that exists after the change decides; a deleted file has only the old side.
    side = mode(change.old_mode) if change.deleted_file else mode(change.new_mode)
    if side == SUBMODULE or (side is None and _is_subproject_diff(change.diff)):
        return submodule_reason(change.diff, path)
    if side == SYMLINK:
        return symlink_reason(change)
    if is_lfs_pointer(_side_text(change.diff, "-" if change.deleted_file else "+")):
        return "Git LFS pointer"
    return None


def submodule_reason(diff: str, path: str) -> str:
    """`submodule <path> moved <old>..<new>` (short SHAs), or added at / removed, from the diff."""
    shas = {sign: sha[:7] for sign, sha, _ in SUBPROJECT.findall(diff)}
    old, new = shas.get("-"), shas.get("+")
    if old and new:
        return f"submodule {path} moved {old}..{new}"
    if new:
        return f"submodule {path} added at {new}"
    if old:
        return f"submodule {path} removed (was at {old})"
    return f"submodule {path}"


def symlink_reason(change: Change) -> str:
    """`symlink to <target>`: a link's content is its target, nothing to review."""
    old = _side_text(change.diff, "-").strip("\n")
    new = _side_text(change.diff, "+").strip("\n")
    if change.deleted_file:
        return f"symlink to {old} (deleted)" if old else "symlink (deleted)"
    if not new:
        return "symlink"
    was = mode(change.old_mode) == SYMLINK and old and old != new and not change.new_file
    return f"symlink to {new} (was to {old})" if was else f"symlink to {new}"


def mode_reason(change: Change) -> str | None:
    """`mode changed 100644 → 100755` when both sides exist with different modes, else None."""
    old, new = mode(change.old_mode), mode(change.new_mode)
    if old and new and old != new and not (change.new_file or change.deleted_file):
        return f"mode changed {old} → {new}"
    return None


def is_lfs_pointer(text: str) -> bool:
    """True for the text of a Git LFS pointer file (version line first, then oid and size)."""
    lines = text.splitlines()
    return bool(lines) and lines[0].rstrip() in LFS_VERSIONS and \
        any(ln.startswith("oid sha256:") for ln in lines) and \
        any(ln.startswith("size ") for ln in lines)


def _side_text(diff: str, sign: str) -> str:
    """The file's text on one side as far as the diff shows it ('+': new side, '-': old side)."""
    lines = diff.splitlines()
    first = next((i for i, ln in enumerate(lines) if ln.startswith("@@")), len(lines))
    rows = [ln[1:] for ln in lines[first:] if ln[:1] in (sign, " ")]
    return "\n".join(rows) + ("\n" if rows else "")


def _is_subproject_diff(diff: str) -> bool:
    # Without modes, only a diff made of nothing but "Subproject commit" lines is a submodule.
    rows = [ln for ln in diff.splitlines() if ln.strip() and not ln.startswith(("@@", "\\"))]
    return bool(rows) and all(SUBPROJECT.match(ln) for ln in rows)


def skip_reason(change: Change, excludes: pathspec.GitIgnoreSpec) -> str | None:
    """Why a file is not reviewed by policy, or None to review it.

    The first that applies: --exclude, a submodule, symlink or Git LFS pointer,
    binary, lock, generated, vendored, a generated-file marker; then, for a diff without hunks,
    what changed instead (mode, rename, copy, an empty file).
    """
    path = change.new_path if not change.deleted_file else change.old_path
    name = PurePosixPath(path).name
    special = special_reason(change, path)
    reasons: list[tuple[bool, str]] = [
        (excludes.match_file(path), "excluded by --exclude"),
        (special is not None, special or ""),
        (_is_binary(change.diff), "binary file"),
        (name.lower() in LOCK_FILES or name.endswith(".lock"), "lock file"),
        (change.generated or GENERATED.match_file(path), "generated file"),
        (VENDORED.match_file(path), "vendored code"),
        (_has_generated_marker(change.diff), "generated file (marked as generated)"),
    ]
    for matched, reason in reasons:
        if matched:
            return reason
    if "@@" not in change.diff and limit_reason(change) is None:
        return _why_no_hunks(change, name)
    return None


def _why_no_hunks(change: Change, name: str) -> str:
    mode = mode_reason(change)
    moved = ("copied from " + change.old_path + ", no textual changes" if change.copied_file
             else "no textual changes" if change.renamed_file else None)
    if moved:
        return f"{moved}, {mode}" if mode else moved
    if mode:
        return mode
    # GitLab may send a binary file's diff as "", with no marker to go by but its name.
    if PurePosixPath(name).suffix.lower() in BINARY_SUFFIXES:
        return "binary file"
    return "empty file" if change.new_file or change.deleted_file else "empty diff"


def _is_binary(diff: str) -> bool:
    # git's markers start a line; inside a hunk every line starts with "+", "-", " " or "\\".
    head = diff[:400]
    return BINARY_MARKER.search(head) is not None or "\x00" in head


def _has_generated_marker(diff: str) -> bool:
    # Only a file's own header counts: the first lines of a hunk that starts at line 1.
    hunk = FIRST_HUNK.search(diff)
    if not hunk or int(hunk.group(1)) > 1:
        return False
    body = diff[hunk.end():].splitlines()[1:8]
    return any(GENERATED_MARKER.search(ln) for ln in body if ln[:1] in "+ ")


def limit_reason(change: Change) -> str | None:
    """Why a file that needs review has no diff to review (GitLab cut it), or None."""
    if change.diff or not (change.too_large or change.collapsed):
        return None
    cut = ("too large for GitLab's diff limits" if change.too_large
           else "collapsed by GitLab (diff over its limits)")
    return f"{cut}: {change.limit_note}" if change.limit_note else cut
