"""Pure: the model's answers checked against the diff, merged into one score and verdict."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from reviewer import identity
from reviewer.answer import clean_text
from reviewer.diff import FileDiff
from reviewer.model import Finding, ModelAnswer, PlacedFinding, Verdict, severity_rank


def place(finding: Finding, files: dict[str, FileDiff]) -> PlacedFinding:
    """Mark a finding placed only when its path and line are a line of the reviewed diff."""
    file = _file(finding.path, files)
    line = file.line_at(finding.side, finding.line) if file else None
    placed = line is not None
    end, suggestion = finding.end_line, finding.suggestion
    if placed and file and end is not None and (
            end < finding.line or not _same_hunk(file, finding.side, finding.line, end)):
        # A range that leaves the diff is narrowed to its first line, not moved; code written
        # to replace the whole range would be wrong for that one line, so it goes.
        end, suggestion = None, None
    path = file.path if file else finding.path
    data = finding.model_dump() | {"path": path, "end_line": end, "suggestion": suggestion}
    key = identity.key(finding, identity.lines(file) if file else None)
    return PlacedFinding(**data, placed=placed, fingerprint=key.fingerprint)


def merge_identical(findings: Sequence[PlacedFinding]) -> list[PlacedFinding]:
    """Each finding once, in the order first reported: pieces of a split hunk overlap, and
    small models repeat an invented finding ten times."""
    unique: dict[tuple[object, ...], PlacedFinding] = {}
    for f in findings:
        key = (f.path, f.side, f.line, f.end_line, f.severity, f.rule, f.title.strip(),
               f.message.strip())
        unique.setdefault(key, f)
    return list(unique.values())


def outside_change(findings: Sequence[PlacedFinding], change_paths: Collection[str]
                   ) -> list[PlacedFinding]:
    """Findings with ``in_change`` set: False for a path that is no file of the change at all
    (small models invent them). change_paths holds every path of the change, old and new,
    whether reviewed, skipped or not reviewed."""
    return [f if f.placed or _known(f.path, change_paths)
            else f.model_copy(update={"in_change": False}) for f in findings]


def _known(path: str, change_paths: Collection[str]) -> bool:
    return path in change_paths or (path.startswith(("a/", "b/")) and path[2:] in change_paths)


def in_change(findings: Sequence[PlacedFinding]) -> list[PlacedFinding]:
    """The findings about files of the change: the ones that may cap, decide and gate."""
    return [f for f in findings if f.in_change]


def _same_hunk(file: FileDiff, side: str, first: int, last: int) -> bool:
    """Both lines in one hunk: a range over two hunks spans lines that are not in the diff."""
    for hunk in file.hunks:
        numbers = {ln.new if side == "new" else ln.old for ln in hunk.lines}
        if first in numbers:
            return last in numbers
    return False


def _file(path: str, files: dict[str, FileDiff]) -> FileDiff | None:
    """The file a finding cites: by path, by a renamed file's old path, without the "b/" a
    model copied from git's diff header (only when that is what makes it match), or by the
    name as the answer's cleaning left it (a name with a control character, which git allows
    and answer.clean_text strips from what the model says)."""
    for candidate in (path, path[2:] if path.startswith(("a/", "b/")) else None):
        if candidate is None:
            continue
        found = files.get(candidate) or next(
            (f for f in files.values() if f.old_path == candidate), None)
        if found:
            return found
    return next((f for f in files.values() if f.path != path and clean_text(f.path) == path),
                None)


def cite(finding: Finding, rule_ids: frozenset[str]) -> Finding:
    """The finding with its rule id as the spec spells it, or none when no such rule exists."""
    wanted = (finding.rule or "").strip().upper()
    rule = next((r for r in rule_ids if r.upper() == wanted), None)
    return finding if rule == finding.rule else finding.model_copy(update={"rule": rule})


def merge_score(answers: Sequence[ModelAnswer], weights: Sequence[int]) -> int | None:
    """One score for the merge request: the requests' scores weighted by their changed lines;
    None when no request was answered (nothing read earns no score)."""
    if not answers:
        return None
    weights = [w or 1 for w in weights]  # a request without changed lines counts as one line
    raw = sum(a.score * w for a, w in zip(answers, weights, strict=True)) / sum(weights)
    return clamp(round(raw))


def clamp(score: int) -> int:
    return max(0, min(100, score))


def consistent_verdict(verdict: Verdict, findings: Sequence[Finding]) -> Verdict:
    """A verdict that the findings support: no approve over a major or worse finding."""
    worst = max((severity_rank(f.severity) for f in findings), default=-1)
    if worst >= severity_rank("critical"):
        return "request_changes"
    if verdict == "approve" and worst >= severity_rank("major"):
        return "comment"
    if verdict == "request_changes" and worst < severity_rank("major"):
        return "comment"  # asking for changes needs a finding that says which
    return verdict


def merge_verdict(answers: Sequence[ModelAnswer]) -> Verdict:
    """The strictest verdict any request gave; "comment" when none answered (nothing read is
    never approved)."""
    order: list[Verdict] = ["approve", "comment", "request_changes"]
    return max((a.verdict for a in answers), key=order.index, default="comment")


def incomplete_verdict(verdict: Verdict, complete: bool) -> Verdict:
    """A review that left out files that needed review never approves."""
    return "comment" if verdict == "approve" and not complete else verdict


def cap_score(score: int | None, findings: Sequence[Finding]) -> int | None:
    """A score that does not contradict the worst finding (no 95 over a blocker)."""
    if score is None:
        return None
    caps = {"blocker": 30, "critical": 49, "major": 79}
    limit = min((caps[f.severity] for f in findings if f.severity in caps), default=100)
    return min(score, limit)


def gate(score: int | None, findings: Sequence[Finding], fail_under: int | None,
         fail_on: str | None) -> str | None:
    """Why the quality gate fails, or None when it passes.

    A review without a score (nothing was reviewed) passes --fail-under: with nothing to
    review there is nothing to fail, and files that needed review but were not reviewed make
    the run incomplete (exit 4) instead. Pass only findings about files of the change.
    """
    if fail_under is not None and score is not None and score < fail_under:
        return f"score {score} is below --fail-under {fail_under}"
    if fail_on is not None:
        hits = [f for f in findings if severity_rank(f.severity) >= severity_rank(fail_on)]  # type: ignore[arg-type]
        if hits:
            return f"{len(hits)} finding(s) at or above --fail-on {fail_on}"
    return None
