"""Pure: the review artifact from what was read: findings checked, one score, one verdict."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from reviewer import __version__, check, coverage, diff, prompt, rerun, secrets, spec
from reviewer.config import Settings
from reviewer.model import (
    DiffFileInfo,
    Finding,
    LocalInfo,
    MergeRequestInfo,
    ModelAnswer,
    ModelInfo,
    Review,
    SkippedFile,
    SpecInfo,
    Verdict,
)

if TYPE_CHECKING:  # in annotations only: a local review never imports python-gitlab
    from reviewer.gitlab import MergeRequest
    from reviewer.llm import ModelClient
    from reviewer.localgit import LocalChange


@dataclass(frozen=True)
class Source:
    changes: Sequence[diff.Change]
    context: prompt.Context
    mr: MergeRequest | None = None
    local: LocalChange | None = None
    diff_file: DiffFileInfo | None = None  # review --diff: the file read


@dataclass(frozen=True)
class Read:
    """What the model was given and what came back."""

    files: Sequence[diff.FileDiff]  # every parsed file that needed review
    sent: dict[str, diff.FileDiff]  # the files in some request, by path: they can take findings
    answered: Sequence[tuple[prompt.Request, ModelAnswer]]
    not_reviewed: Sequence[diff.Skipped]  # limits: GitLab's size, the budget, model failures
    secrets: Sequence[Finding] = ()  # one per secret the change adds, whatever the model says
    split: rerun.Split | None = None  # --incremental: files and findings carried over

    @property
    def reviewed(self) -> dict[str, diff.FileDiff]:
        """The files the model read whole: sent, and no request of theirs failed."""
        missing = {s.path for s in self.not_reviewed}
        return {p: f for p, f in self.sent.items() if p not in missing}


def assemble(settings: Settings, source: Source, rules: spec.Spec, read: Read,
             policy: list[diff.Skipped], model: ModelClient, notes: Sequence[str] = ()
             ) -> Review:
    """The review artifact: findings checked against the diff, one score, one verdict, and
    the coverage that says how much of the change was read."""
    ids = frozenset(r.id for r in rules.rules)
    answers = [a for _, a in read.answered]
    carried = read.split.carried if read.split else {}
    placed = check.merge_identical(
        [check.place(check.cite(f, ids), read.sent) for a in answers for f in a.findings]
        + (read.split.findings if read.split else []))
    # Every file was scanned for secrets in full, sent to the model or not.
    parsed = {file.path: file for file in read.files}
    ours = [check.place(f, parsed) for f in read.secrets]
    findings = check.outside_change(secrets.merge(ours, placed), _paths(source.changes))
    counted = check.in_change(findings)  # invented files neither cap, decide nor gate
    weights = [r.changed for r, _ in read.answered]  # a split file counts once in all
    covered = coverage.measure(read.reviewed | carried, policy, read.not_reviewed, parsed)
    score = check.cap_score(_score(answers, weights, read.split), counted)
    verdict = check.incomplete_verdict(
        check.consistent_verdict(_verdict(answers, read.split), counted), covered.complete)
    notice = coverage.incomplete_notice(covered)
    summary = "\n\n".join(p for p in (notice, *notes, _summary(answers, read, policy)) if p)
    return Review(
        generated_at=datetime.now(UTC), tool_version=__version__,
        merge_request=_mr_info(source.mr, settings.redact), local=_local_info(source.local),
        diff_file=source.diff_file,
        model=ModelInfo(name=settings.model, host=settings.model_host,
                        structured_output=model.mode if answers else None),
        spec=SpecInfo(source=rules.source, ref=rules.ref, commit=rules.commit,
                      rules=[r.id for r in rules.rules]),
        score=score, verdict=verdict, summary=summary, findings=findings,
        files_reviewed=list(read.reviewed),
        skipped_files=[SkippedFile(path=s.path, reason=s.reason) for s in policy],
        coverage=covered, usage=model.usage, timings={},
        rerun=read.split.rerun if read.split else None,
    )


def _summary(answers: Sequence[ModelAnswer], read: Read, policy: Sequence[diff.Skipped]) -> str:
    """The answers' summaries, each once in order (requests often answer with the same words);
    without answers, the earlier review's when files were carried over, else why none."""
    if answers:
        return "\n\n".join(dict.fromkeys(a.summary.strip() for a in answers
                                          if a.summary.strip()))
    if read.split and read.split.carried and read.split.earlier:
        return read.split.earlier.summary  # nothing changed that needed a new look
    return "" if read.not_reviewed else coverage.nothing_to_review(policy)


def _score(answers: Sequence[ModelAnswer], weights: Sequence[int], split: rerun.Split | None
           ) -> int | None:
    """The score of the whole merge request: this run's answers, and in an incremental run the
    earlier score for the files carried over, weighted by their changed lines."""
    now = check.merge_score(answers, weights)
    earlier = split.earlier.score if split and split.earlier and split.carried else None
    if earlier is None:
        return now
    if now is None:
        return earlier
    done = sum(w or 1 for w in weights)
    kept = sum(f.changed_lines or 1 for f in split.carried.values()) if split else 0
    return check.clamp(round((now * done + earlier * kept) / (done + kept)))


def _verdict(answers: Sequence[ModelAnswer], split: rerun.Split | None) -> Verdict:
    """The strictest of this run's verdicts and, for files carried over, the earlier one's (a
    request for changes only as "comment": the findings, carried over or new, decide whether
    changes are still asked for)."""
    if split and split.earlier and split.carried:
        kept: Verdict = "comment" if split.earlier.verdict == "request_changes" else \
            split.earlier.verdict
        earlier = ModelAnswer(score=0, verdict=kept, summary="")
        return check.merge_verdict([*answers, earlier])
    return check.merge_verdict(answers)


def _paths(changes: Sequence[diff.Change]) -> frozenset[str]:
    return frozenset(p for c in changes for p in (c.old_path, c.new_path))


def _mr_info(mr: MergeRequest | None, redact: bool) -> MergeRequestInfo | None:
    if mr is None:
        return None
    # review.json and the note's JSON block are artifacts: a key pasted in a title stays out.
    title = secrets.redact_text(mr.title) if redact else mr.title
    return MergeRequestInfo(project=mr.project_path, iid=mr.iid, web_url=mr.web_url, title=title,
                            source_branch=mr.source_branch, target_branch=mr.target_branch,
                            base_sha=mr.base_sha, start_sha=mr.start_sha, head_sha=mr.head_sha)


def _local_info(local: LocalChange | None) -> LocalInfo | None:
    if local is None:
        return None
    return LocalInfo(repository=local.repository, base=local.base, head=local.head,
                     base_sha=local.base_sha, head_sha=local.head_sha)
