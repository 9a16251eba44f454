"""Pure: when two findings are the same finding, within a run and across runs, and the hidden
marker that carries a finding's identity in its thread (issue 10, item 1).

A finding is *anchored* on a diff line by its path, the line's normalised text and which
occurrence of that text it is among the file's diff lines on its side, counted from the top:
lines inserted above it change its number, not its anchor, and two lines that read alike (two
``conn = get_connection()``) are two anchors. Two findings are the same finding when they
have the same anchor and the same rule; without a rule, when their words (title and message)
are close enough by rapidfuzz's ``token_set_ratio`` (https://rapidfuzz.github.io/RapidFuzz/
Usage/fuzz.html): a model words the same finding differently from run to run.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import threading
import weakref
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from reviewer.diff import FileDiff, LineKind
from reviewer.model import Finding, PlacedFinding

# token_set_ratio of title and message, measured on 18 pairs of rewordings of one finding and
# 40 pairs of different problems on one line (three lines): rewordings 49-91, 15 of 18 at 70
# or more (below: two wordings of the example with unlike messages, 67.4 and 63.9, and
# "Hard-coded database password" / "Credentials in source code", 49.1); different problems at
# most 65 but for one pair at 70.8 about a `connect(...)` call both messages name. Lexical
# similarity has limits; 70 leans to keeping different findings apart. The issue's titles "SQL
# built from user input" / "User input is concatenated into the SQL query" score 71.8 alone
# (plain `ratio`: 31.4, not 80-85; token_set_ratio not above 95 either).
SIMILAR = 70.0
MAX_WORDS = 500  # of a finding's normalised words, compared and kept in its marker
SPACE = re.compile(r"\s+")
MARKER_RE = re.compile(r"<!-- reviewer:finding (?:v2 (?P<fingerprint>[0-9a-f]{16}) "
                       r"(?P<anchor>[0-9a-f]{16}) (?P<words>[A-Za-z0-9+/]*)|"
                       r"(?P<v1>[0-9a-f]+)) -->")


@dataclass(frozen=True)
class Spot:
    """Where a finding sits, as later runs can find it again: the side of the file the line
    is on (a context line counts on the new side), its normalised text, which occurrence."""

    side: str
    text: str
    occurrence: int


@dataclass(frozen=True)
class Lines:
    """A file's diff lines by (side, number): each one's (side, text, occurrence)."""

    path: str
    spots: Mapping[tuple[str, int], tuple[str, str, int]]

    def spot(self, side: str, number: int) -> Spot | None:
        """The spot of the line a finding names, or None when it is no line of the diff."""
        found = self.spots.get((side, number))
        return Spot(*found) if found else None


@dataclass(frozen=True)
class Key:
    """A finding's identity: its anchor (path, spot and rule), its words, and the fingerprint
    the version before markers were versioned gave it (to recognise its threads)."""

    anchor: str
    ruled: bool
    words: str
    legacy: str

    @property
    def fingerprint(self) -> str:
        """The anchor for a finding with a rule; with its words as well for one without, so
        two problems on one line have two fingerprints."""
        return self.anchor if self.ruled else _hash(self.anchor, self.words)


@dataclass(frozen=True)
class Mark:
    """What the hidden marker of one of our threads says. A marker of the first version holds
    only the legacy fingerprint (anchor None)."""

    fingerprint: str
    anchor: str | None = None
    words: str = ""


def normalise(text: str) -> str:
    """Text as identities compare it: case and runs of white space do not count (the same as
    the first version's regular expression, five times as fast)."""
    return " ".join(text.split()).lower()


def _hash(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


def legacy_fingerprint(rule: str | None, path: str, text: str) -> str:
    """The fingerprint of the first version: rule, path and the normalised line text."""
    return _hash(rule or "", path, SPACE.sub(" ", text).strip().lower())


def lines(file: FileDiff) -> Lines:
    """Every line of a file's diff with its spot, counting occurrences from the top.

    Kept while the file lives (by object, not by value: hashing a diff reads all of it), as
    each finding of a file asks for the same one.
    """
    with _LOCK:
        known = _KNOWN.get(id(file))
    if known is not None and known[0]() is file:
        return known[1]
    index = _index(file)
    with _LOCK:
        _KNOWN[id(file)] = (weakref.ref(file), index)
    weakref.finalize(file, _forget, id(file))
    return index


_KNOWN: dict[int, tuple[weakref.ref[FileDiff], Lines]] = {}
_LOCK = threading.Lock()


def _forget(ident: int) -> None:
    with _LOCK:
        _KNOWN.pop(ident, None)


def _index(file: FileDiff) -> Lines:
    spots: dict[tuple[str, int], tuple[str, str, int]] = {}
    seen: Counter[tuple[str, str]] = Counter()
    for hunk in file.hunks:
        for line in hunk.lines:
            text = normalise(line.text)
            if line.kind != LineKind.ADDED and line.old is not None:
                seen["old", text] += 1
                spots["old", line.old] = ("old", text, seen["old", text])
            if line.kind != LineKind.REMOVED and line.new is not None:
                seen["new", text] += 1
                spots["new", line.new] = ("new", text, seen["new", text])
                if line.old is not None:  # a context line: one spot from either side
                    spots["old", line.old] = spots["new", line.new]
    return Lines(file.path, spots)


def words(finding: Finding) -> str:
    """A finding's title and message, normalised and bounded."""
    return normalise(f"{finding.title} {finding.message}")[:MAX_WORDS]


def key(finding: Finding, where: Lines | None) -> Key:
    """The identity of a finding on the diff lines of its file (where; None without them).

    A finding whose line is not in the diff is keyed by its title in place of a line text;
    a placed one whose diff is not given, by its line number (enough within one run).
    """
    path = where.path if where else finding.path
    spot = where.spot(finding.side, finding.line) if where else None
    if spot is None:
        on_line = where is None and isinstance(finding, PlacedFinding) and finding.placed
        side = f"#{finding.side}:{finding.line}" if on_line else "#"
        spot = Spot(side, normalise(finding.title), 0)
    rule = finding.rule or ""
    anchor = _hash("v2", rule, path, spot.side, spot.text, str(spot.occurrence))
    return Key(anchor, bool(finding.rule), words(finding),
               legacy_fingerprint(finding.rule, path, spot.text))


def keys(findings: Sequence[Finding], files: Mapping[str, FileDiff] | None) -> list[Key]:
    """The key of each finding on its file's diff lines (files: by path; None without)."""
    found = [(files or {}).get(f.path) for f in findings]
    return [key(f, lines(file) if file else None) for f, file in zip(findings, found,
                                                                     strict=True)]


def similarity(a: str, b: str) -> float:
    """How alike two findings' words are, 0 to 100 (rapidfuzz's token_set_ratio over
    lower-cased alphanumeric words: word order and repeated words do not count)."""
    if a == b:
        return 100.0
    # Imported here: most runs compare no words, and start-up time is every run's.
    from rapidfuzz import fuzz, utils
    return float(fuzz.token_set_ratio(a, b, processor=utils.default_process))


def same(a: Key, b: Key) -> bool:
    """Two findings of one run are the same finding."""
    return a.anchor == b.anchor and (a.ruled or similarity(a.words, b.words) >= SIMILAR)


def match(k: Key, mark: Mark) -> float | None:
    """How well a thread's marker fits a finding (higher is closer), None when it is another
    finding. A first-version marker fits a finding with the same legacy fingerprint."""
    if mark.anchor is None:
        return 100.0 if mark.fingerprint == k.legacy else None
    if mark.anchor != k.anchor:
        return None
    score = 100.0 if k.ruled else similarity(k.words, mark.words)
    return score if score >= SIMILAR else None


def marker(k: Key) -> str:
    """The hidden first line of a thread: version, fingerprint, anchor and the words.

    The words are model text: base64 (no "-", no ">", no space) cannot end the HTML comment
    or start anything GitLab would act on, and MAX_WORDS bounds its length.
    """
    encoded = base64.b64encode(k.words.encode()).decode().rstrip("=")
    return f"<!-- reviewer:finding v2 {k.fingerprint} {k.anchor} {encoded} -->"


def read_marker(body: str) -> Mark | None:
    """The marker that opens a note, of either version, or None for a note without one."""
    found = MARKER_RE.match(body)
    if not found:
        return None
    if found["v1"]:
        return Mark(found["v1"])
    raw = found["words"]
    try:
        text = base64.b64decode(raw + "=" * (-len(raw) % 4)).decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        text = ""
    return Mark(found["fingerprint"], found["anchor"], text[:MAX_WORDS])
