"""The full text of files GitLab's /diffs cut: collapsed or too_large, served with no diff.

GitLab serves a file whose patch reaches a tenth of `diff_max_patch_bytes` (default 200 KiB, so
20 KiB) as ``collapsed``, and one that reaches all of it as ``too_large``, both with an empty
``diff`` (lib/gitlab/git/diff.rb). The whole text comes from two places, each read at most
once per run and only when some file needs it:

- ``GET /projects/:id/merge_requests/:iid/raw_diffs`` (GitLab 17.9, gitlab-org/gitlab!178813):
  Workhorse streams Gitaly's RawDiff, ``git diff --full-index base head``, as plain text with
  nothing cut. Older GitLab answers 404.
- ``GET .../merge_requests/:iid/changes?access_raw_diffs=true`` (deprecated since 15.7): the
  diff objects read from Gitaly without the collapse limit; too_large files stay empty
  (gitlab-org/gitlab#300385).

The raw diff is bytes of unknown encoding and names unusual paths in git's C-style quoting;
this module reads it as a stream, keeps only the wanted files, and matches them by their exact
paths (read from each file's header by reviewer.gitpatch, the one reader of git's format), so
no name is mangled and a huge change is never held in memory whole.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, cast

import gitlab
import requests

from reviewer import gitpatch, text
from reviewer.diff import Change

log = logging.getLogger(__name__)
Key = tuple[str, str]  # (old_path, new_path), exactly as GitLab's JSON gives them

_HEADER_LINES = 64  # git's extended header is a handful of lines; more is not a header


@dataclass
class Fetched:
    """What a full-text read found: diffs by file, and the files over --max-file-bytes."""

    diffs: dict[Key, str] = field(default_factory=dict)
    over: dict[Key, int] = field(default_factory=dict)  # file -> its diff's size in bytes

    def merge(self, other: Fetched) -> None:
        self.diffs |= other.diffs
        self.over |= other.over


def fill(gl: gitlab.Gitlab, path: str, changes: Sequence[Change], max_bytes: int
         ) -> list[Change]:
    """The changes with the files GitLab cut filled in, where found and within max_bytes.

    path is the merge request's API path (/projects/:id/merge_requests/:iid). Reads
    /raw_diffs; then /changes?access_raw_diffs=true for the files it lacked, or for all of them
    on a GitLab without /raw_diffs (404). python-gitlab's errors propagate (the caller turns
    them into one line).
    """
    wanted = {key(c) for c in changes if needs_full_text(c)}
    fetched = _raw_diffs(gl, path, wanted, max_bytes)
    missing = wanted - fetched.diffs.keys() - fetched.over.keys()
    if missing:
        data = gl.http_get(f"{path}/changes", query_data={"access_raw_diffs": "true"})
        items = (data.get("changes") or []) if isinstance(data, dict) else []
        fetched.merge(from_changes(items, missing, max_bytes))
    for (_, new_path), size in sorted(fetched.over.items()):
        log.warning("%s: its diff is %d bytes, over --max-file-bytes %d: not reviewed",
                    new_path, size, max_bytes)
    return complete(changes, fetched, max_bytes)


def _raw_diffs(gl: gitlab.Gitlab, path: str, wanted: set[Key], max_bytes: int) -> Fetched:
    try:
        # streamed: python-gitlab hands back the response itself, unread
        response = cast(requests.Response,
                        gl.http_get(f"{path}/raw_diffs", streamed=True, raw=True))
    except gitlab.GitlabHttpError as exc:
        if exc.response_code != 404:
            raise
        return Fetched()  # GitLab before 17.9
    with response:
        return read_patch(response.iter_content(chunk_size=64 * 1024), wanted, max_bytes)


def key(change: Change) -> Key:
    """How a file is known in every GitLab answer: its two paths."""
    return change.old_path, change.new_path


def needs_full_text(change: Change) -> bool:
    """True for a file GitLab cut: collapsed or too_large, with no diff."""
    return (change.collapsed or change.too_large) and not change.diff


def complete(changes: Sequence[Change], fetched: Fetched, max_bytes: int = 0
             ) -> list[Change]:
    """The changes with every fetched file's diff in place and GitLab's cut flags cleared.

    A file not fetched is left cut, so diff.select lists it as not reviewed for a limit; one
    over the limit says so (limit_note), naming the setting that would let it be read.
    """
    out = []
    for change in changes:
        found = fetched.diffs.get(key(change)) if needs_full_text(change) else None
        size = fetched.over.get(key(change)) if needs_full_text(change) else None
        if found:
            change = replace(change, diff=found, too_large=False, collapsed=False)
        elif size:
            change = replace(change, limit_note=f"its diff is {size:,} bytes, over "
                                                f"--max-file-bytes {max_bytes:,}")
        out.append(change)
    return out


def unread(changes: Sequence[Change], why: str) -> list[Change]:
    """The changes with every file GitLab cut marked as not read in full, and why."""
    return [replace(c, limit_note=why) if needs_full_text(c) else c for c in changes]


def from_changes(items: Iterable[dict[str, Any]], wanted: set[Key], max_bytes: int) -> Fetched:
    """The wanted files' diffs from /changes?access_raw_diffs=true objects."""
    fetched = Fetched()
    for item in items:
        found = (str(item.get("old_path")), str(item.get("new_path")))
        diff = str(item.get("diff") or "")
        if found in wanted and diff:
            size = len(diff.encode())
            if size > max_bytes:
                fetched.over[found] = size
            else:
                fetched.diffs[found] = diff
    return fetched


def read_patch(chunks: Iterable[bytes], wanted: set[Key], max_bytes: int) -> Fetched:
    """The wanted files' diffs out of a whole `git diff` patch read as a stream of bytes.

    Each diff is given as GitLab's /diffs gives it: from its first ``@@`` line on. A file's
    diff is kept while it stays within max_bytes; past that only its size is kept.
    """
    fetched = Fetched()
    section: _Section | None = None
    for line in _lines(chunks):
        if line.startswith(b"diff --git "):
            if section:
                section.finish(fetched)
            section = _Section(wanted, max_bytes, [line])
        elif section:
            section.add(line)
    if section:
        section.finish(fetched)
    return fetched


@dataclass
class _Section:
    """One file of a patch: its header until the first hunk, then (if wanted) its hunks."""

    wanted: set[Key]
    max_bytes: int
    header: list[bytes]
    name: Key | None = None
    body: list[bytes] = field(default_factory=list)
    size: int = 0
    in_body: bool = False

    def add(self, line: bytes) -> None:
        if not self.in_body and line.startswith(b"@@"):
            named = gitpatch.section(b"".join(self.header))
            self.in_body, self.name = True, (named.old_path, named.new_path)
        if not self.in_body:
            if len(self.header) < _HEADER_LINES:
                self.header.append(line)
            return
        if self.name not in self.wanted:
            return
        self.size += len(line)
        if self.size <= self.max_bytes:
            self.body.append(line)
        else:
            self.body.clear()  # over the limit: only its size is needed from here on

    def finish(self, fetched: Fetched) -> None:
        if self.name is None or self.name not in self.wanted:
            return  # a file with no hunks (binary, mode only) is never one GitLab cut
        if self.size > self.max_bytes:
            fetched.over[self.name] = self.size
        elif self.body:
            fetched.diffs[self.name] = text.decode(b"".join(self.body))


def _lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Lines with their b"\\n" (a "\\r" is content: CRLF files keep it), from any chunking."""
    rest = b""
    for chunk in chunks:
        rest += chunk
        *complete_lines, rest = rest.split(b"\n")
        for line in complete_lines:
            yield line + b"\n"
    if rest:
        yield rest
