"""Pure: a change's likely secrets replaced by placeholders, and a finding for each one it adds.

Every line that could reach the model is redacted, whatever its kind: an added line, a removed
one and a context line (a secret already in the code is still a secret). Findings are about
what the change adds: a secret on an added line (or a key block with an added line) is one;
a secret only removed or only shown as context is redacted and not reported (removing it is
the fix, and an old one is not the author's doing). The placeholder keeps the rest of the line
as it was (``API_KEY = "<redacted:stripe-key>"``) and depends only on the kind of secret, so a
line redacts to the same text on every run and findings keep their fingerprints.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import TypeVar

from reviewer.diff import DiffLine, FileDiff, Hunk, LineKind
from reviewer.model import Finding
from reviewer.secrets import blocks, detect
from reviewer.secrets.detect import Hit

PLACEHOLDER = "<redacted:{kind}>"
SECRET_WORDS = re.compile(r"(?i)secret|credential|key|token|password|redact")
F = TypeVar("F", bound=Finding)


@dataclass(frozen=True)
class Redaction:
    """The files as they may be sent (same paths, hunks, line kinds and numbers; secret text
    replaced), the findings for the secrets the change adds, and how many values were
    replaced (a count for the log: never a value)."""

    files: tuple[FileDiff, ...]
    findings: list[Finding] = field(default_factory=list)
    redacted: int = 0


def redact_files(files: Sequence[FileDiff], rule: str | None = None) -> Redaction:
    """Redact every line of every hunk; a finding (critical, citing rule) per added secret."""
    out: list[FileDiff] = []
    findings: list[Finding] = []
    count = 0
    for file in files:
        hunks = []
        for hunk in file.hunks:
            redacted, found, n = _hunk(file.path, hunk, rule)
            hunks.append(redacted)
            findings += found
            count += n
        out.append(replace(file, hunks=tuple(hunks)) if hunks != list(file.hunks) else file)
    return Redaction(tuple(out), findings, count)


def redact_text(text: str, path: str = "") -> str:
    """Text with its likely secrets replaced: a title, a description, a commit message (path
    empty: read as free text, where values go unquoted), or a file's text."""
    lines = text.split("\n")
    hits = {i: detect.scan(line, path) for i, line in enumerate(lines)}
    for block in blocks.find(lines):
        _add_block(hits, block, range(len(lines)))
    return "\n".join(_apply(line, hits.get(i, [])) for i, line in enumerate(lines))


def secrets_rule(rules: Iterable[object]) -> str | None:
    """The id of the spec's rule about committed secrets (the bundled spec's SEC-002), found
    by its title; None when the spec has none. rules: spec.Rule-like (id, title)."""
    for rule in rules:
        title = str(getattr(rule, "title", ""))
        if re.search(r"(?i)\b(secret|credential)s?\b", title):
            return str(getattr(rule, "id", "")) or None
    return None


def merge(ours: Sequence[F], theirs: Sequence[F]) -> list[F]:
    """Our secret findings first, then the model's, less its own reports of the same secret
    (on a line we flagged, citing our rule or speaking of secrets): the model only saw the
    placeholder, and one finding per secret is enough."""
    rules = {f.rule for f in ours} | {None}
    taken = {(f.path, f.side, f.line) for f in ours}
    return [*ours, *(f for f in theirs if (f.path, f.side, f.line) not in taken
                     or (f.rule not in rules and not SECRET_WORDS.search(f.title)))]


def _hunk(path: str, hunk: Hunk, rule: str | None) -> tuple[Hunk, list[Finding], int]:
    lines = hunk.lines
    hits = {i: detect.scan(line.text, path) for i, line in enumerate(lines)}
    findings: list[Finding] = []
    covered: set[int] = set()  # added lines whose secret a key block's finding reports
    for side, left_out in (("new", LineKind.REMOVED), ("old", LineKind.ADDED)):
        view = [i for i, line in enumerate(lines) if line.kind != left_out]
        for block in blocks.find([lines[i].text for i in view]):
            _add_block(hits, block, view)
            members = [lines[i] for i in view[block.first:block.last + 1]]
            if side == "new" and any(m.kind == LineKind.ADDED for m in members):
                findings.append(_finding(path, members[0], members[-1], [block.kind], rule))
                covered.update(view[block.first:block.last + 1])
    for i, line in enumerate(lines):
        kinds = list(dict.fromkeys(h.kind for h in _merged(hits[i]) if h.report))
        if line.kind == LineKind.ADDED and kinds and i not in covered:
            findings.append(_finding(path, line, line, kinds, rule))
    texts = [_apply(line.text, hits[i]) for i, line in enumerate(lines)]
    count = sum(len(_merged(h)) for h in hits.values())
    if texts == [line.text for line in lines]:
        return hunk, findings, count
    new_lines = tuple(replace(line, text=text) if text != line.text else line
                      for line, text in zip(lines, texts, strict=True))
    return replace(hunk, lines=new_lines), findings, count


def _add_block(hits: dict[int, list[Hit]], block: blocks.Block, view: Sequence[int]) -> None:
    """A block's spans (indexes into the view) as hits on the lines they belong to."""
    for index, spans in block.spans.items():
        hits.setdefault(view[index], []).extend(
            Hit(start, end, block.kind) for start, end in spans)


def _merged(hits: Sequence[Hit]) -> list[Hit]:
    """Overlapping hits as one, named by the most specific (lowest rank, then longest)."""
    merged: list[list[Hit]] = []
    for hit in sorted(hits, key=lambda h: (h.start, -h.end)):
        if merged and hit.start < max(h.end for h in merged[-1]):
            merged[-1].append(hit)
        else:
            merged.append([hit])
    out = []
    for group in merged:
        best = min(group, key=lambda h: (h.rank, h.start - h.end))
        start, end = min(h.start for h in group), max(h.end for h in group)
        out.append(Hit(start, end, best.kind, best.rank, any(h.report for h in group)))
    return out


def _apply(text: str, hits: Sequence[Hit]) -> str:
    for hit in reversed(_merged(hits)):
        text = text[:hit.start] + PLACEHOLDER.format(kind=hit.kind) + text[hit.end:]
    return text


def _finding(path: str, first: DiffLine, last: DiffLine, kinds: Sequence[str],
             rule: str | None) -> Finding:
    what = ", ".join(detect.label(k) for k in kinds)
    start, end = first.new or 0, last.new
    return Finding(
        path=path, line=start, side="new", end_line=end if end and end != start else None,
        severity="critical", rule=rule, title=f"Secret committed: {what}",
        message=(f"Anyone who can read the repository or its history can use this {what}. "
                 "Rotate it now (deleting the line leaves it in the history), then load it "
                 "from the environment or a secret store. Its value was not sent to the model."),
        suggestion=None)
