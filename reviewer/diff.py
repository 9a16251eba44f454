"""Diffs as our own immutable types, parsed with unidiff; which files to review and why not."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import PurePosixPath

import pathspec
from unidiff.errors import UnidiffParseError
from unidiff.patch import PatchSet

from reviewer.errors import ReviewerError


class LineKind(StrEnum):
    ADDED = "added"
    REMOVED = "removed"
    CONTEXT = "context"


@dataclass(frozen=True)
class DiffLine:
    kind: LineKind
    old: int | None
    new: int | None
    text: str


@dataclass(frozen=True)
class Hunk:
    old_start: int
    new_start: int
    header: str
    lines: tuple[DiffLine, ...]


@dataclass(frozen=True)
class FileDiff:
    """One file of a change, parsed."""

    old_path: str
    new_path: str
    status: str  # added | deleted | renamed | modified
    hunks: tuple[Hunk, ...]

    @property
    def path(self) -> str:
        return self.old_path if self.status == "deleted" else self.new_path

    def line_at(self, side: str, number: int) -> DiffLine | None:
        """The diff line a finding may address: side new = added/context, old = removed/context."""
        for hunk in self.hunks:
            for line in hunk.lines:
                if side == "new" and line.new == number:
                    return line
                if side == "old" and line.old == number:
                    return line
        return None

    @property
    def changed_lines(self) -> int:
        return sum(1 for h in self.hunks for ln in h.lines if ln.kind != LineKind.CONTEXT)


@dataclass(frozen=True)
class Change:
    """One file as a source reports it, before parsing (GitLab's diff object or git's patch)."""

    old_path: str
    new_path: str
    diff: str  # unified diff body starting at the first "@@", or a whole git patch section
    new_file: bool = False
    deleted_file: bool = False
    renamed_file: bool = False
    too_large: bool = False
    collapsed: bool = False
    generated: bool = False
    old_mode: str | None = None  # git's file modes ("100644", "100755", "120000", "160000")
    new_mode: str | None = None


@dataclass(frozen=True)
class Skipped:
    """A file left out of the review, and why.

    ``limit`` tells the two kinds apart: False for a skip by policy (binary, lock, generated,
    vendored, --exclude, nothing textual to review), True for a file that needed review but a
    limit stopped it (too large to fetch, over the budget, the model failed). Only the second
    kind makes a review incomplete.
    """

    path: str
    reason: str
    limit: bool = False


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


def parse_change(change: Change) -> FileDiff:
    """Parse one source file change into our types (unidiff does the parsing)."""
    text = change.diff
    if not text.startswith(("diff --git", "---")):
        old = "/dev/null" if change.new_file else f"a/{change.old_path}"
        new = "/dev/null" if change.deleted_file else f"b/{change.new_path}"
        text = f"--- {old}\n+++ {new}\n{text}"
    if not text.endswith("\n"):
        text += "\n"
    try:
        patch = PatchSet(text)
    except UnidiffParseError as exc:
        raise ReviewerError(f"cannot parse the diff of {change.new_path}: {exc}") from None
    hunks = tuple(_hunk(h) for pf in patch for h in pf)
    return FileDiff(change.old_path, change.new_path, _status(change), hunks)


def _hunk(hunk: object) -> Hunk:
    lines = []
    for line in hunk:  # type: ignore[attr-defined]
        if line.is_added:
            kind = LineKind.ADDED
        elif line.is_removed:
            kind = LineKind.REMOVED
        elif line.is_context:
            kind = LineKind.CONTEXT
        else:  # "\ No newline at end of file"
            continue
        lines.append(DiffLine(kind, line.source_line_no, line.target_line_no,
                              line.value.rstrip("\r\n")))
    h = hunk
    header = f"@@ -{h.source_start},{h.source_length} +{h.target_start},{h.target_length} @@"  # type: ignore[attr-defined]
    return Hunk(h.source_start, h.target_start, header, tuple(lines))  # type: ignore[attr-defined]


def _status(change: Change) -> str:
    if change.new_file:
        return "added"
    if change.deleted_file:
        return "deleted"
    if change.renamed_file or change.old_path != change.new_path:
        return "renamed"
    return "modified"


def skip_reason(change: Change, excludes: pathspec.GitIgnoreSpec) -> str | None:
    """Why a file is not reviewed, or None to review it."""
    path = change.new_path if not change.deleted_file else change.old_path
    name = PurePosixPath(path).name
    reasons: list[tuple[bool, str]] = [
        (excludes.match_file(path), "excluded by --exclude"),
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
    # GitLab may send a binary file's diff as "", with no marker to go by but its name.
    if PurePosixPath(name).suffix.lower() in BINARY_SUFFIXES:
        return "binary file"
    if change.renamed_file:
        return "no textual changes"
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


def exclude_spec(globs: Iterable[str]) -> pathspec.GitIgnoreSpec:
    """The user's --exclude globs, gitignore-style."""
    return pathspec.GitIgnoreSpec.from_lines(list(globs))


def limit_reason(change: Change) -> str | None:
    """Why a file that needs review has no diff to review (GitLab cut it), or None."""
    if change.too_large and not change.diff:
        return "too large for GitLab's diff limits"
    if change.collapsed and not change.diff:
        return "collapsed by GitLab (diff over its limits)"
    return None


def select(changes: Sequence[Change], excludes: Iterable[str] = ()
           ) -> tuple[list[FileDiff], list[Skipped]]:
    """Parse the files worth reviewing; list the others with the reason (policy or limit)."""
    spec = exclude_spec(excludes)
    files: list[FileDiff] = []
    skipped: list[Skipped] = []
    for change in changes:
        reason = skip_reason(change, spec)
        path = change.old_path if change.deleted_file else change.new_path
        if reason:
            skipped.append(Skipped(path, reason))
            continue
        limit = limit_reason(change)
        if limit:
            skipped.append(Skipped(path, limit, limit=True))
            continue
        parsed = parse_change(change)
        if parsed.hunks:
            files.append(parsed)
        else:
            skipped.append(Skipped(path, "empty diff"))
    return files, skipped


def split_patch(patch: str) -> list[Change]:
    """Split a whole `git diff` patch into per-file changes (local mode)."""
    try:
        parsed = PatchSet(patch)
    except UnidiffParseError as exc:
        raise ReviewerError(f"cannot parse git's diff: {exc}") from None
    changes = []
    for pf in parsed:
        old = _strip(pf.source_file)
        new = _strip(pf.target_file)
        changes.append(Change(
            old_path=old if old != "/dev/null" else new,
            new_path=new if new != "/dev/null" else old,
            diff=str(pf) if not pf.is_binary_file else f"Binary files {old} and {new} differ\n",
            new_file=pf.is_added_file, deleted_file=pf.is_removed_file,
            renamed_file=pf.is_rename,
        ))
    return changes


def _strip(path: str) -> str:
    if len(path) > 1 and path[0] == path[-1] == '"':  # git quotes unusual names C-style
        path = path[1:-1].encode().decode("unicode_escape").encode("latin-1").decode()
    return path[2:] if path.startswith(("a/", "b/")) else path
