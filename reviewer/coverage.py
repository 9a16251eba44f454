"""Pure: how much of a change a review read, and what a reader must be told about the rest."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from reviewer.diff import FileDiff, Skipped
from reviewer.model import Coverage, NotReviewed

MAX_LISTED = 20  # files named in the summary's opening line; the rest are counted


def measure(reviewed: Mapping[str, FileDiff], policy: Sequence[Skipped],
            not_reviewed: Sequence[Skipped], parsed: Mapping[str, FileDiff]) -> Coverage:
    """The coverage object of review.json.

    reviewed: the files the model read, by path; policy: files skipped by policy;
    not_reviewed: files that needed review but hit a limit (each listed once, first reason
    wins); parsed: every file whose diff was parsed, for the line counts of the files not
    reviewed (a file GitLab cut has no diff and counts no lines).
    """
    missing = _unique(not_reviewed)
    lines_reviewed = sum(f.changed_lines for f in reviewed.values())
    lines_missing = sum(parsed[s.path].changed_lines for s in missing if s.path in parsed)
    return Coverage(
        files_total=len(reviewed) + len(policy) + len(missing),
        files_reviewed=len(reviewed), files_skipped=len(policy),
        files_not_reviewed=len(missing),
        lines_total=lines_reviewed + lines_missing, lines_reviewed=lines_reviewed,
        lines_not_reviewed=lines_missing,
        not_reviewed=[NotReviewed(path=s.path, reason=s.reason) for s in missing],
    )


def _unique(skipped: Iterable[Skipped]) -> list[Skipped]:
    seen: dict[str, Skipped] = {}
    for s in skipped:
        seen.setdefault(s.path, s)
    return list(seen.values())


def incomplete_notice(coverage: Coverage) -> str | None:
    """The line an incomplete review opens with, or None when it read everything it needed to.

    Shape: "Incomplete: 3 of 7 files not reviewed: a.py, b.py (reason); c.sql (reason)." with
    files grouped by reason and at most MAX_LISTED named; M counts the files that needed review.
    """
    if coverage.complete:
        return None
    return (f"Incomplete: {coverage.files_not_reviewed} of {coverage.needed_review} files not "
            f"reviewed: {grouped(coverage.not_reviewed, MAX_LISTED)}.")


def by_reason(missing: Sequence[NotReviewed]) -> dict[str, list[str]]:
    """The paths of files not reviewed under each reason, in order: a reason many files share
    is said once."""
    grouped: dict[str, list[str]] = {}
    for n in missing:
        grouped.setdefault(n.reason, []).append(n.path)
    return grouped


def grouped(missing: Sequence[NotReviewed], limit: int) -> str:
    """Files not reviewed, grouped by reason: "a.py, b.py (reason); c.sql (other reason)"."""
    parts = [f"{', '.join(paths)} ({reason})"
             for reason, paths in by_reason(missing[:limit]).items()]
    if len(missing) > limit:
        parts.append(f"and {len(missing) - limit} more (see review.json)")
    return "; ".join(parts)


def nothing_to_review(policy: Sequence[Skipped]) -> str:
    """The summary of a change in which nothing needed review, saying why."""
    if not policy:
        return "Nothing to review: the change is empty."
    files = "the one changed file was" if len(policy) == 1 else \
        f"all {len(policy)} changed files were"
    return (f"Nothing to review: {files} skipped by policy (binary, lock, generated, vendored, "
            "excluded, or no textual change); no score.")
