"""Pure: what a review leaves in its summary note for the next run (issue 10, item 2).

The state is one hidden line at the end of the summary note: ``<!-- reviewer:state v1 DATA -->``
where DATA is the state's JSON, compressed (zlib) and base64-encoded. The findings in it are
model text: base64 has no ``-``, ``>``, space or line end, so nothing in it can end the HTML
comment, start a line GitLab would run as a quick action, or mention anyone. The line is
bounded (MAX_STATE_CHARS); a review whose state would not fit leaves none, and the next run
reviews in full. Reading is as careful: the decompressed size is bounded and the JSON is
validated, so a damaged or edited note makes the next run review in full, never fail.
"""

from __future__ import annotations

import base64
import binascii
import re
import zlib
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ValidationError

from reviewer.model import PlacedFinding, Review, Verdict

VERSION = "v1"
MAX_STATE_CHARS = 200_000  # of the encoded line: with the other parts, below 1,000,000
MAX_JSON_BYTES = 8_000_000  # decompressed: a small line cannot expand into gigabytes
MAX_SUMMARY = 20_000
STATE_RE = re.compile(r"^<!-- reviewer:state (?P<version>v\d+) (?P<data>[A-Za-z0-9+/=]*) -->$",
                      re.MULTILINE)


class StateError(ValueError):
    """The state of the earlier review is there but cannot be used (said in the summary)."""


class State(BaseModel):
    """What the next run needs of this one: the commits it read, what it concluded, and the
    findings of every file it covered (reviewed this run or carried over)."""

    version: Literal[1] = 1
    head_sha: str
    base_sha: str
    model: str
    rules: list[str]
    spec_commit: str | None = None
    score: int | None = None
    verdict: Verdict = "comment"
    summary: str = ""
    files: list[str]  # whose findings below are complete at head_sha
    findings: list[PlacedFinding]
    anchors: list[str] = []  # each finding's anchor (identity.Key.anchor), in order


def of(review: Review, anchors: Sequence[str] = ()) -> State | None:
    """The state a review of a merge request leaves (anchors: of its findings about files of
    the change, in order); None for a local review."""
    mr = review.merge_request
    if mr is None:
        return None
    return State(head_sha=mr.head_sha, base_sha=mr.base_sha, model=review.model.name,
                 rules=review.spec.rules, spec_commit=review.spec.commit, score=review.score,
                 verdict=review.verdict, summary=review.summary[:MAX_SUMMARY],
                 files=sorted(review.files_reviewed + (review.rerun.files_carried_over
                                                       if review.rerun else [])),
                 findings=[f for f in review.findings if f.in_change], anchors=list(anchors))


def block(review: Review, anchors: Sequence[str] = ()) -> str:
    """The hidden line for the summary note, or "" when there is none or it would not fit."""
    state = of(review, anchors)
    if state is None:
        return ""
    data = base64.b64encode(zlib.compress(state.model_dump_json().encode(), 9)).decode()
    line = f"<!-- reviewer:state {VERSION} {data} -->"
    return line if len(line) <= MAX_STATE_CHARS else ""


def read(body: str) -> State | None:
    """The state in a summary note's body; None when it has none (a note of an older version,
    or a review too large to keep one). Raises StateError when it is there but unusable."""
    found = STATE_RE.search(body)
    if found is None:
        return None
    if found["version"] != VERSION:
        raise StateError(f"it was written in a format this version does not read "
                         f"({found['version']})")
    try:
        inflate = zlib.decompressobj()
        raw = inflate.decompress(base64.b64decode(found["data"], validate=True), MAX_JSON_BYTES)
        if inflate.unconsumed_tail:
            raise StateError("its state is larger than this version reads")
        return State.model_validate_json(raw)
    except (binascii.Error, zlib.error, ValidationError, ValueError) as exc:
        if isinstance(exc, StateError):
            raise
        raise StateError("its state is damaged") from None
