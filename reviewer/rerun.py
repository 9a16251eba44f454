"""Pure: what an incremental run asks the model about and what it carries over (issue 10).

The earlier review's state (reviewer/state.py) names the head commit it read and the findings
of every file it covered. When that commit is an ancestor of the new head (GitLab's merge_base
of the two is the old head), only the files the new commits changed (GitLab's compare, old
head to new head) and the files the earlier review did not cover go to the model, each whole;
the findings of the other files are carried over as they were, placed again on today's diff.
When the old head is not in the history (a force-push, a rebase), the review is full.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from reviewer import check, diff
from reviewer.diff import Change, FileDiff, LineKind
from reviewer.errors import ReviewerError
from reviewer.model import Finding, PlacedFinding, Rerun
from reviewer.state import State


@dataclass(frozen=True)
class Split:
    """The files to send to the model, the files carried over with their findings, and how
    this run builds on the earlier review."""

    review: list[FileDiff]
    rerun: Rerun
    carried: dict[str, FileDiff] = field(default_factory=dict)
    findings: list[PlacedFinding] = field(default_factory=list)
    earlier: State | None = None
    # anchors of earlier findings whose line the new commits changed ("Fixed in")
    touched: frozenset[str] = frozenset()


def full(files: Sequence[FileDiff], reason: str | None) -> Split:
    """A full review, and why (None: there was no earlier review to build on)."""
    return Split(list(files), Rerun(mode="full", reason=reason))


def start_over(state: State, model: str, rules: Sequence[str], spec_commit: str | None
               ) -> str | None:
    """Why the earlier review's findings cannot stand for today's (another model, other
    rules), or None when they can."""
    if state.model != model:
        return f"full review: the model changed since the last review ({state.model[:80]})"
    if list(state.rules) != list(rules) or state.spec_commit != spec_commit:
        return "full review: the review rules changed since the last review"
    return None


def not_in_history(state: State, base_sha: str) -> str:
    """Why a full review when the old head is no ancestor of the new one: a rebase onto a
    moved target branch when the merge request's base moved too, else a force-push."""
    how = ("a rebase onto the moved target branch" if state.base_sha != base_sha
           else "a force-push")
    return (f"full review: the last reviewed commit {state.head_sha[:12]} is no longer in this "
            f"merge request's history ({how})")


def split(files: Sequence[FileDiff], state: State, since: Sequence[Change]) -> Split:
    """Files changed since the earlier review (since: GitLab's compare of old head to new
    head) or not covered by it go to the model; the others' findings are carried over."""
    changed = {p for c in since for p in (c.old_path, c.new_path)}
    covered = set(state.files)
    review: list[FileDiff] = []
    carried: dict[str, FileDiff] = {}
    for f in files:
        if f.path in changed or f.old_path in changed or f.path not in covered:
            review.append(f)
        else:
            carried[f.path] = f
    findings = [check.place(_bare(f), carried) for f in state.findings if f.path in carried]
    rerun = Rerun(mode="incremental", since_sha=state.head_sha,
                  files_carried_over=sorted(carried), findings_carried_over=len(findings))
    return Split(review, rerun, carried, findings, state, touched(state, since))


def _bare(finding: PlacedFinding) -> Finding:
    return Finding(**finding.model_dump(include=set(Finding.model_fields)))


def touched(state: State, since: Sequence[Change]) -> frozenset[str]:
    """The anchors of earlier findings on a line the new commits removed or rewrote (a
    new-file line of the old head is an old-side line of the compare)."""
    removed: dict[str, set[int]] = {}
    for change in since:
        try:
            parsed = diff.parse_change(change)
        except ReviewerError:
            continue  # a diff that cannot be read changes no verdict: "No longer reported"
        removed[parsed.old_path] = {ln.old for h in parsed.hunks for ln in h.lines
                                    if ln.kind == LineKind.REMOVED and ln.old is not None}
    return frozenset(anchor for f, anchor in zip(state.findings, state.anchors, strict=False)
                     if f.side == "new" and f.line in removed.get(f.path, ()))
