"""Diffs as our own immutable types, parsed with unidiff; which files to review and why not.

Names and file kinds come from the sources (GitLab's fields, git's headers read by gitpatch.py);
unidiff reads only hunks here, never names.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

import pathspec
from unidiff.errors import UnidiffParseError
from unidiff.patch import PatchSet

from reviewer import gitpatch
from reviewer.changekind import limit_reason, skip_reason  # callers use them from here
from reviewer.errors import ReviewerError
from reviewer.text import clean, decode


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
    status: str  # added | deleted | renamed | copied | modified
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
    copied_file: bool = False  # git's "copy from/copy to": old_path still exists
    # Why a file GitLab cut is still without its full text (over --max-file-bytes, a failed
    # read): said instead of the bare cut, so a reader knows what would fix it.
    limit_note: str | None = None


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


HUNK_START = re.compile(r"^@@", re.MULTILINE)


def parse_change(change: Change) -> FileDiff:
    """Parse one file's change into our types: unidiff reads the hunks, the names come from change.

    change.diff is GitLab's form (from the first "@@") or a whole git section: whatever comes
    before the first "@@" line is dropped, so no file name is ever read as a header. Raises
    ReviewerError when the hunks cannot be parsed.
    """
    start = HUNK_START.search(change.diff)
    if not start:
        return FileDiff(change.old_path, change.new_path, _status(change), ())
    text = change.diff[start.start():]
    old = "/dev/null" if change.new_file else "a/file"
    new = "/dev/null" if change.deleted_file else "b/file"
    text = f"--- {old}\n+++ {new}\n{text}" + ("" if text.endswith("\n") else "\n")
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
    if change.copied_file:
        return "copied"
    if change.renamed_file or change.old_path != change.new_path:
        return "renamed"
    return "modified"


def exclude_spec(globs: Iterable[str]) -> pathspec.GitIgnoreSpec:
    """The user's --exclude globs, gitignore-style."""
    return pathspec.GitIgnoreSpec.from_lines(list(globs))


def select(changes: Sequence[Change], excludes: Iterable[str] = (), max_bytes: int = 0
           ) -> tuple[list[FileDiff], list[Skipped]]:
    """Parse the files worth reviewing; list the others with the reason (policy or limit).

    Every change comes out once, as a FileDiff or a Skipped; paths and diff text are made
    encodable first (text.clean), whatever the source. A file whose diff is over max_bytes
    (--max-file-bytes; 0: no limit) is not reviewed, for a limit: split into pieces it would
    take a request for every few hundred lines. Raises ReviewerError on an unparsable hunk.
    """
    spec = exclude_spec(excludes)
    files: list[FileDiff] = []
    skipped: list[Skipped] = []
    for change in map(_clean, changes):
        reason = skip_reason(change, spec)
        path = change.old_path if change.deleted_file else change.new_path
        if reason:
            skipped.append(Skipped(path, reason))
            continue
        limit = limit_reason(change) or _over(change, max_bytes)
        if limit:
            skipped.append(Skipped(path, limit, limit=True))
            continue
        parsed = parse_change(change)
        if parsed.hunks:
            files.append(parsed)
        else:
            skipped.append(Skipped(path, "empty diff"))
    return files, skipped


def _clean(change: Change) -> Change:
    old, new, text = clean(change.old_path), clean(change.new_path), clean(change.diff)
    if (old, new, text) == (change.old_path, change.new_path, change.diff):
        return change
    return replace(change, old_path=old, new_path=new, diff=text)


def _over(change: Change, max_bytes: int) -> str | None:
    size = len(change.diff.encode("utf-8", "surrogateescape")) if max_bytes else 0
    if size > max_bytes:
        return f"its diff is {size:,} bytes, over --max-file-bytes {max_bytes:,}"
    return None


def split_patch(patch: str | bytes) -> list[Change]:
    """Split a whole `git diff` patch into per-file changes (local mode), in git's order.

    Give git's bytes where possible: each file is decoded by itself (text.decode). Names, modes
    and the kind of change come from git's headers (gitpatch.py), exact for any name; a plain
    unified diff without `diff --git` lines is split by unidiff. Raises ReviewerError when a
    plain diff cannot be parsed.
    """
    data = patch if isinstance(patch, bytes) else patch.encode("utf-8", "surrogateescape")
    if not gitpatch.has_git_headers(data):
        return _split_plain(decode(data))
    return [Change(old_path=s.old_path, new_path=s.new_path, diff=s.body,
                   new_file=s.new_file, deleted_file=s.deleted_file, renamed_file=s.renamed,
                   copied_file=s.copied, old_mode=s.old_mode, new_mode=s.new_mode)
            for s in gitpatch.sections(data)]


def _split_plain(patch: str) -> list[Change]:
    try:
        parsed = PatchSet(patch)
    except UnidiffParseError as exc:
        raise ReviewerError(f"cannot parse the diff: {exc}") from None
    changes = []
    for pf in parsed:
        old, new = _strip(pf.source_file, "a/"), _strip(pf.target_file, "b/")
        changes.append(Change(
            old_path=old if old != "/dev/null" else new,
            new_path=new if new != "/dev/null" else old,
            diff=str(pf) if not pf.is_binary_file else f"Binary files {old} and {new} differ\n",
            new_file=pf.is_added_file, deleted_file=pf.is_removed_file,
            renamed_file=old not in (new, "/dev/null") and new != "/dev/null",
        ))
    return changes


def _strip(path: str, prefix: str) -> str:
    name = decode(gitpatch.unquote(path.encode("utf-8", "surrogateescape"))[0])
    return name.removeprefix(prefix)
