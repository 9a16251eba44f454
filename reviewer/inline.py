"""Pure: where on the diff a finding goes (GitLab positions), its suggestion, and what to post."""

from __future__ import annotations

import hashlib
import textwrap
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from reviewer import identity
from reviewer.diff import DiffLine, FileDiff, Hunk, LineKind
from reviewer.model import PlacedFinding, severity_rank

MAX_SUGGESTION_SPAN = 100  # GitLab widens a suggestion by at most 100 lines each way


@dataclass(frozen=True)
class Refs:
    """The newest diff version's SHAs: every position must carry all three."""

    base_sha: str
    start_sha: str
    head_sha: str


@dataclass(frozen=True)
class Anchor:
    """A diff line as GitLab addresses it: old/new numbers and the positions of line codes."""

    line: DiffLine
    old_pos: int  # GitLab's counters: an added line sits before the next old line, and so on
    new_pos: int


@dataclass(frozen=True)
class Thread:
    """One of our threads already on the merge request, with what its marker says."""

    discussion_id: str
    mark: identity.Mark
    resolved: bool
    path: str | None = None  # the file it is on, when GitLab says


@dataclass(frozen=True)
class Plan:
    """What a run does inline: post new findings, leave known ones, resolve the gone ones."""

    post: tuple[PlacedFinding, ...]
    known: tuple[PlacedFinding, ...]  # already in an unresolved or human-resolved thread
    summary_only: tuple[PlacedFinding, ...]  # unplaced, over --max-inline, or inline is off
    resolve: tuple[Thread, ...]
    keys: tuple[identity.Key, ...] = ()  # the identity of each finding to post, in order
    # (fingerprint, fingerprint): a finding that is the same finding as another of this run,
    # and that other, whose thread speaks for both
    merged: tuple[tuple[str, str], ...] = ()

    def inline(self, threaded: set[str]) -> frozenset[str]:
        """The fingerprints shown by a thread, given those of the findings in one."""
        return frozenset(threaded | {f for f, by in self.merged if by in threaded})


def anchors(hunk: Hunk) -> Iterator[Anchor]:
    """Every line of a hunk with GitLab's old and new positions."""
    old, new = hunk.old_start, hunk.new_start
    for line in hunk.lines:
        yield Anchor(line, line.old or old, line.new or new)
        if line.kind != LineKind.ADDED:
            old += 1
        if line.kind != LineKind.REMOVED:
            new += 1


def _find(file: FileDiff, side: str, number: int) -> tuple[Hunk, Anchor] | None:
    for hunk in file.hunks:
        for anchor in anchors(hunk):
            if getattr(anchor.line, side) == number:
                return hunk, anchor
    return None


def new_file_line(finding: PlacedFinding, file: FileDiff | None) -> int:
    """The line of the new file a finding points at; a removed line's is the one after it."""
    if finding.side == "new" or file is None:
        return finding.line
    found = _find(file, "old", finding.line)
    return found[1].new_pos if found else finding.line


def _numbers(line: DiffLine) -> dict[str, int]:
    # GitLab's rule: an added line takes new_line only, a removed one old_line only, an
    # unchanged one both; anything else is "400 line_code can't be blank".
    numbers = {}
    if line.kind != LineKind.ADDED and line.old is not None:
        numbers["old_line"] = line.old
    if line.kind != LineKind.REMOVED and line.new is not None:
        numbers["new_line"] = line.new
    return numbers


def line_code(path: str, anchor: Anchor) -> str:
    """GitLab's line code: SHA-1 of the path, then the old and new positions."""
    digest = hashlib.sha1(path.encode(), usedforsecurity=False).hexdigest()
    return f"{digest}_{anchor.old_pos}_{anchor.new_pos}"


def _range_end(finding: PlacedFinding, file: FileDiff, hunk: Hunk) -> Anchor | None:
    """The anchor a multi-line finding ends on, when the range stays inside one hunk."""
    if finding.end_line is None or finding.end_line <= finding.line:
        return None
    found = _find(file, finding.side, finding.end_line)
    return found[1] if found and found[0] is hunk else None


def position(finding: PlacedFinding, file: FileDiff, refs: Refs,
             multiline: bool = True) -> dict[str, Any] | None:
    """The `position` of an inline discussion on the finding's line, or None if it has none."""
    found = _find(file, finding.side, finding.line)
    if not found:
        return None
    hunk, start = found
    pos: dict[str, Any] = {"position_type": "text", "base_sha": refs.base_sha,
                           "start_sha": refs.start_sha, "head_sha": refs.head_sha,
                           "old_path": file.old_path, "new_path": file.new_path}
    end = _range_end(finding, file, hunk)
    if end is None:
        return pos | _numbers(start.line)
    # A range is anchored on its last line, with or without the line_range naming both ends:
    # GitLab applies a suggestion relative to the anchor, so both must be the same line.
    if not multiline:
        return pos | _numbers(end.line)
    return pos | _numbers(end.line) | {"line_range": {
        "start": _range_point(file.new_path, start), "end": _range_point(file.new_path, end)}}


def _range_point(path: str, anchor: Anchor) -> dict[str, Any]:
    kind = {LineKind.ADDED: "new", LineKind.REMOVED: "old"}.get(anchor.line.kind)
    return {"line_code": line_code(path, anchor), "type": kind, **_numbers(anchor.line)}


def suggestion(finding: PlacedFinding, file: FileDiff) -> tuple[int, str] | None:
    """(lines above, replacement) for a committable suggestion, or None to show plain code.

    The note sits on the range's last line (see `position`) and GitLab counts a suggestion's
    lines from there, so the range reaches that many lines above: `suggestion:-N+0`. Only
    new-side lines inside one hunk can be replaced; the replacement keeps the indentation of
    the first line it replaces when the model dropped it.
    """
    if not finding.suggestion or finding.side != "new":
        return None
    found = _find(file, "new", finding.line)
    if not found:
        return None
    hunk, start = found
    last = finding.end_line if finding.end_line and finding.end_line > finding.line \
        else finding.line
    new_lines = {a.line.new: a.line for a in anchors(hunk) if a.line.kind != LineKind.REMOVED}
    span = range(finding.line, last + 1)
    if last - finding.line > MAX_SUGGESTION_SPAN or any(n not in new_lines for n in span):
        return None
    return last - finding.line, reindent(finding.suggestion, start.line.text)


def reindent(replacement: str, original: str) -> str:
    """The replacement, indented like the original line when it came without indentation."""
    body = textwrap.dedent(replacement.strip("\n"))
    indent = original[:len(original) - len(original.lstrip())]
    first = replacement.strip("\n")
    if not indent or first[:1].isspace():
        return replacement.strip("\n")
    return "\n".join(indent + ln if ln.strip() else ln for ln in body.splitlines())


def by_importance(findings: Iterable[PlacedFinding]) -> list[PlacedFinding]:
    """Most severe first; then by file and line, so a run's choice is stable."""
    return sorted(findings, key=lambda f: (-severity_rank(f.severity), f.path, f.line))


def plan(findings: Sequence[PlacedFinding], threads: Sequence[Thread], limit: int,
         enabled: bool, files: Mapping[str, FileDiff] | None = None,
         unread: frozenset[str] = frozenset()) -> Plan:
    """Decide what to post, what is already there, and which of our threads to resolve.

    files: the diffs the findings were placed on; their lines make the findings' identities
    (identity.py; without them a finding is known by its line number). Findings that are the
    same finding (identity.same) share one thread, spoken for by the most severe; a thread
    is a group's when its marker fits (identity.match), one thread to one group. So the same
    finding never gets a second thread and different findings never share one. unread: the
    files this run did not review (a failed request, the deadline): their threads stay open,
    as nothing said their findings are gone.
    """
    keyed = zip(findings, identity.keys(findings, files), strict=True)
    groups = _groups([(f, k) for f, k in keyed
                      if f.placed and (files is None or f.path in files)])
    matched = _match(groups, threads)
    reps = [group[0] for group in groups]
    known = [rep for i, rep in enumerate(reps) if i in matched] if enabled else []
    fresh = [rep for i, rep in enumerate(reps) if i not in matched] if enabled else []
    post = fresh[:max(0, limit - len(known))]
    merged = tuple((f.fingerprint, group[0][0].fingerprint) for group in groups
                   for f, _ in group[1:])
    decided = Plan(post=tuple(f for f, _ in post), known=tuple(f for f, _ in known),
                   summary_only=(), resolve=(), keys=tuple(k for _, k in post), merged=merged)
    inline = decided.inline({f.fingerprint for f in (*decided.post, *decided.known)})
    taken = set(matched.values())
    return replace(
        decided, summary_only=tuple(f for f in findings if f.fingerprint not in inline),
        resolve=tuple(t for i, t in enumerate(threads)
                      if not t.resolved and i not in taken and t.path not in unread))


Keyed = tuple[PlacedFinding, identity.Key]


def _groups(keyed: Sequence[Keyed]) -> list[list[Keyed]]:
    """The findings of one run grouped by identity, the groups and each group's reports most
    severe first (then by file and line, as by_importance)."""
    ranked = sorted(keyed, key=lambda fk: (-severity_rank(fk[0].severity), fk[0].path,
                                           fk[0].line))
    groups: list[list[Keyed]] = []
    at: dict[str, list[list[Keyed]]] = {}  # the groups on each anchor
    for f, k in ranked:
        home = next((g for g in at.get(k.anchor, []) if identity.same(g[0][1], k)), None)
        if home is None:
            home = []
            groups.append(home)
            at.setdefault(k.anchor, []).append(home)
        home.append((f, k))
    return groups


def _match(groups: Sequence[Sequence[Keyed]], threads: Sequence[Thread]) -> dict[int, int]:
    """Each group's thread (group index: thread index), one to one, the closest pairs first:
    a reworded finding takes the thread of its own wording, not its neighbour's."""
    near: dict[str, list[int]] = {}  # threads by anchor, or by legacy fingerprint
    for ti, thread in enumerate(threads):
        near.setdefault(thread.mark.anchor or thread.mark.fingerprint, []).append(ti)
    pairs = []
    for gi, group in enumerate(groups):
        candidates = {ti for _, k in group for ti in (*near.get(k.anchor, ()),
                                                     *near.get(k.legacy, ()))}
        for ti in sorted(candidates):
            mark = threads[ti].mark
            scores = [s for _, k in group if (s := identity.match(k, mark)) is not None]
            if scores:
                pairs.append((-max(scores), gi, ti))
    matched: dict[int, int] = {}
    used: set[int] = set()
    for _, gi, ti in sorted(pairs):
        if gi not in matched and ti not in used:
            matched[gi] = ti
            used.add(ti)
    return matched
