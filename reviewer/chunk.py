"""Pure: files -> units of numbered diff text that fit a request, and units -> requests.

A file goes whole when it fits; otherwise hunk by hunk, and a hunk larger than a request is
split at line boundaries into pieces that overlap by a few lines, each with its own hunk header
and the real old/new numbers on every row, so every line can still take a finding. Only a
single line longer than a request is clipped, with a visible note. Related files (one folder, a
module and its test) are ordered together so they share a request where they fit.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from reviewer.diff import DiffLine, FileDiff, Hunk, LineKind

OVERLAP = 3  # lines each piece of a split hunk repeats from the one before: context for the model
CLIP_NOTE = " … [line clipped: {n} characters]"
MIN_KEEP = 40  # a clipped row keeps at least its numbers, its sign and a little code
LABEL = " [part {i} of {n}]"
LABEL_ROOM = len(LABEL.format(i=999_999, n=999_999))
SIGNS = {LineKind.ADDED: "+", LineKind.REMOVED: "-", LineKind.CONTEXT: " "}
TESTED = re.compile(r"^test_(.+)$|^(.+?)_(?:test|spec)$|^(.+?)Tests?$")

Escape = Callable[[str], str]


@dataclass(frozen=True)
class Unit:
    """Text for one request: a whole file, or one part of it."""

    path: str
    text: str
    changed: int  # added and removed lines shown (a line in two overlapping pieces counts twice)
    part: int = 1  # which part of its file: 1 for a whole file or its first part


def number_lines(hunk: Hunk) -> str:
    """A hunk with explicit old and new line numbers, so the model can cite exact lines."""
    return "\n".join([hunk.header, *(row(line) for line in hunk.lines)])


def row(line: DiffLine) -> str:
    old = str(line.old) if line.old is not None else ""
    new = str(line.new) if line.new is not None else ""
    return f"{old:>5} {new:>5} {SIGNS[line.kind]} {line.text}"


def _changed(lines: Sequence[DiffLine]) -> int:
    return sum(1 for line in lines if line.kind != LineKind.CONTEXT)


def file_units(file: FileDiff, head: str, budget: int, escape: Escape) -> list[Unit] | None:
    """A file as one unit when it fits budget characters, else as labelled parts that each do;
    None only when not even one clipped line fits beside the file's header."""
    hunks = [escape(number_lines(h)) for h in file.hunks]
    whole = head + "\n".join(hunks) + "\n"
    if len(whole) <= budget:
        return [Unit(file.path, whole, file.changed_lines)]
    title = head.rstrip()
    room = budget - len(title) - LABEL_ROOM - 2  # the label's line break and the closing one
    parts: list[tuple[str, int]] = []
    for hunk, text in zip(file.hunks, hunks, strict=True):
        if len(text) <= room:
            parts.append((text, _changed(hunk.lines)))
            continue
        pieces = split_hunk(hunk, room, escape)
        if pieces is None:
            return None
        parts += pieces
    n = len(parts)
    return [Unit(file.path, f"{title}{LABEL.format(i=i, n=n)}\n{text}\n", changed, i)
            for i, (text, changed) in enumerate(parts, 1)]


def split_hunk(hunk: Hunk, room: int, escape: Escape) -> list[tuple[str, int]] | None:
    """A hunk as pieces of at most room characters, each with its own header and the changed
    lines it shows; consecutive pieces share up to OVERLAP lines."""
    width = room - len(_bound(hunk))  # for the rows, each with the line break before it
    if width < MIN_KEEP + len(CLIP_NOTE.format(n=10**12)) + 1:
        return None
    rows = [_clip(escape(row(line)), len(line.text), width - 1) for line in hunk.lines]
    olds, news = _last(hunk, "old"), _last(hunk, "new")
    pieces = []
    for start, end in _spans([len(r) + 1 for r in rows], width):
        lines = hunk.lines[start:end]
        header = f"@@ -{_range(lines, 'old', olds[start])} +{_range(lines, 'new', news[start])} @@"
        pieces.append(("\n".join([header, *rows[start:end]]), _changed(lines)))
    return pieces


def _clip(text: str, length: int, width: int) -> str:
    """A row cut to width characters, saying how long the line was, so the cut is visible."""
    if len(text) <= width:
        return text
    note = CLIP_NOTE.format(n=length)
    return text[:width - len(note)] + note


def _spans(sizes: Sequence[int], width: int) -> list[tuple[int, int]]:
    """Greedy [start, end) runs whose sizes sum to at most width (each size alone fits); each
    run after the first repeats up to OVERLAP lines, but always moves on by at least one."""
    spans = []
    start = 0
    while True:
        end, used = start, 0
        while end < len(sizes) and used + sizes[end] <= width:
            used += sizes[end]
            end += 1
        spans.append((start, end))
        if end >= len(sizes):
            return spans
        start = max(end - min(OVERLAP, (end - start) // 2), start + 1)


def _bound(hunk: Hunk) -> str:
    """A header at least as long as any piece's: its numbers are the hunk's largest."""
    old = hunk.old_start + len(hunk.lines)
    new = hunk.new_start + len(hunk.lines)
    return f"@@ -{old},{old} +{new},{new} @@"


def _last(hunk: Hunk, side: str) -> list[int]:
    """For each line of hunk, the number on side of the last line before it that has one: where
    an empty range starts, as unified diffs say ("-5,0": after line 5). Computed once, so
    splitting a hunk of many pieces stays linear."""
    numbers = [getattr(ln, side) for ln in hunk.lines]
    start = hunk.old_start if side == "old" else hunk.new_start
    last = [max(start - 1, 0) if any(n is not None for n in numbers) else start]
    for number in numbers:
        last.append(number if number is not None else last[-1])
    return last


def _range(lines: Sequence[DiffLine], side: str, before: int) -> str:
    """The "start,count" of a piece's lines on one side, from their own numbers."""
    shown = [n for n in (getattr(ln, side) for ln in lines) if n is not None]
    return f"{shown[0]},{len(shown)}" if shown else f"{before},0"


def related(files: Sequence[FileDiff]) -> list[list[FileDiff]]:
    """Files in review order, in groups: a module with the tests of it in the change; groups
    sorted by folder, so files of one folder and a module's tests sit together."""
    modules: dict[str, list[str]] = {}
    for file in files:
        if _tested(file.path) is None:
            modules.setdefault(_stem(file.path), []).append(file.path)
    anchor = {f.path: _module_of(f.path, modules) for f in files}
    groups: dict[str, list[FileDiff]] = {}
    for file in sorted(files, key=lambda f: (posixpath.dirname(anchor[f.path]),
                                             anchor[f.path], f.path != anchor[f.path], f.path)):
        groups.setdefault(anchor[file.path], []).append(file)
    return list(groups.values())


def _stem(path: str) -> str:
    return posixpath.basename(path).split(".")[0]


def _tested(path: str) -> str | None:
    """The module name a test file's name points at (test_user.py, user_test.go, user.test.ts,
    user_spec.rb, UserTest.java -> user/User); None for a file that is not a test."""
    parts = posixpath.basename(path).split(".")
    if len(parts) > 2 and parts[-2] in ("test", "spec"):
        return parts[0]
    match = TESTED.match(parts[0])
    return next((g for g in match.groups() if g), None) if match else None


def _module_of(path: str, modules: dict[str, list[str]]) -> str:
    """The module a test belongs with (same extension first, then by path), else itself."""
    name = _tested(path)
    ext = posixpath.splitext(path)[1]
    found = sorted(modules.get(name, []) if name else [],
                   key=lambda p: (posixpath.splitext(p)[1] != ext, p))
    return found[0] if found else path


def pack(groups: Sequence[Sequence[Unit]], budget: int) -> list[list[Unit]]:
    """Units into as few requests of at most budget characters as greedy order allows; a group
    that fits a request of its own but not the rest of the current one starts a new request,
    so related files are not torn apart for a few characters."""
    requests: list[list[Unit]] = []
    size = budget + 1  # no request open yet
    for group in groups:
        total = sum(len(u.text) + 1 for u in group) - 1  # + the "\n" joining units
        if total <= budget < size + 1 + total:
            size = budget + 1
        for unit in group:
            if size + 1 + len(unit.text) <= budget:
                requests[-1].append(unit)
                size += 1 + len(unit.text)
            else:
                requests.append([unit])
                size = len(unit.text)
    return requests
