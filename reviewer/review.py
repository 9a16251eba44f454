"""Orchestration, top to bottom: source -> diff -> spec -> prompt -> model -> checks -> outputs."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from secrets import token_hex

from reviewer import (
    __version__,
    check,
    coverage,
    diff,
    prompt,
    publish,
    secrets,
    spec,
    spec_project,
)
from reviewer.clock import Clock
from reviewer.config import Settings, reveal
from reviewer.errors import ConfigError, DeadlineExceeded, GitLabError, ModelError, UsageError
from reviewer.gitlab import GitLab, MergeRequest, Target, resolve_target
from reviewer.gitlab_http import Origins
from reviewer.llm import ModelClient
from reviewer.llm_errors import one_line
from reviewer.localgit import LocalChange, read_change
from reviewer.model import (
    Finding,
    LocalInfo,
    MergeRequestInfo,
    ModelAnswer,
    ModelInfo,
    Review,
    SkippedFile,
    SpecInfo,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """What a run produced, for cli.py to print and turn into an exit code."""

    review: Review
    posted: publish.Posted | None = None
    gate_failure: str | None = None
    incomplete: bool = False  # files that needed review were not reviewed


@dataclass(frozen=True)
class Source:
    changes: Sequence[diff.Change]
    context: prompt.Context
    mr: MergeRequest | None = None
    local: LocalChange | None = None


def run(settings: Settings) -> Outcome:
    """Review one change and publish the result as settings ask.

    Raises ModelError when every model request failed (nothing misleading is written or
    posted), and the other ReviewerErrors of its stages.
    """
    started = time.monotonic()
    _check_outputs(settings)
    client, source = _source(settings)
    rules, notes = _rules(settings, client, source)
    files, skipped = diff.select(source.changes, settings.exclude)
    files, found, context = _redacted(settings, rules, files, source.context)
    tag = f"mr-data-{token_hex(4)}"  # unguessable, so the diff cannot close it
    requests, too_big = prompt.build(files, rules, context, settings.max_input_tokens, tag)
    unsent = {s.path for s in too_big}
    # Only what the model saw can take a finding.
    by_path = {f.path: f for f in files if f.path not in unsent}
    log.info("%d file(s) to review (%d too large for a request), %d skipped by policy, %d "
             "rule(s) from %s, %d request(s) to %s on %s", len(files), len(too_big),
             sum(1 for s in skipped if not s.limit), len(rules.rules), rules.source,
             len(requests), settings.model, settings.model_host)
    model = ModelClient(settings.base_url, reveal(settings.api_key), settings.model,
                        settings.max_output_tokens, settings.timeout, settings.model_host,
                        retries=settings.retries, clock=Clock(settings.deadline))
    asked = time.monotonic()
    answered, failed = _ask(model, requests)
    timings = {"model_s": round(time.monotonic() - asked, 3),
               "total_s": round(time.monotonic() - started, 3)}
    limits = [s for s in skipped if s.limit] + too_big + failed
    review = assemble(settings, source, rules, Read(files, by_path, answered, limits, found),
                      [s for s in skipped if not s.limit], model, notes
                      ).model_copy(update={"timings": timings})
    posted = _publish(settings, client, source, review, by_path)
    gate = check.gate(review.score, check.in_change(review.findings), settings.fail_under,
                      settings.fail_on)
    return Outcome(review, posted, gate, incomplete=not review.coverage.complete)


def _check_outputs(settings: Settings) -> None:
    # Fail before the expensive part: an unwritable output would lose the model's answers.
    publish.check_writable(settings.output, "--output")
    if settings.codequality:
        publish.check_writable(settings.codequality, "--codequality")
        if settings.codequality.resolve() == settings.output.resolve():
            raise UsageError(f"--codequality and --output are both {settings.output}: the "
                             "report would replace the review; give each its own file")


def _publish(settings: Settings, client: GitLab | None, source: Source, review: Review,
             by_path: dict[str, diff.FileDiff]) -> publish.Posted | None:
    """Files first (review.json before anything is posted), then the merge request."""
    publish.write_artifact(review, settings.output)
    if settings.codequality:
        publish.write_codequality(review, settings.codequality, by_path)
    if not (client and source.mr and not settings.dry_run):
        return None
    # --deadline stops new model requests, not the posting of what was answered.
    poster = _client(settings, client.url, Clock()) if settings.deadline else client
    try:
        return publish.post(poster, source.mr, review, by_path, settings.max_inline,
                            settings.inline, settings.artifact)
    except GitLabError as exc:
        # The review itself is not lost: say where it is, so a retry or a person can use it.
        raise GitLabError(f"{exc} (the review is saved in {settings.output})") from None


@dataclass(frozen=True)
class Read:
    """What the model was given and what came back."""

    files: Sequence[diff.FileDiff]  # every parsed file that needed review
    sent: dict[str, diff.FileDiff]  # the files in some request, by path: they can take findings
    answered: Sequence[tuple[prompt.Request, ModelAnswer]]
    not_reviewed: Sequence[diff.Skipped]  # limits: GitLab's size, the budget, model failures
    secrets: Sequence[Finding] = ()  # one per secret the change adds, whatever the model says

    @property
    def reviewed(self) -> dict[str, diff.FileDiff]:
        """The files the model read whole: sent, and no request of theirs failed."""
        missing = {s.path for s in self.not_reviewed}
        return {p: f for p, f in self.sent.items() if p not in missing}


def _redacted(settings: Settings, rules: spec.Spec, files: list[diff.FileDiff],
              context: prompt.Context
              ) -> tuple[list[diff.FileDiff], list[Finding], prompt.Context]:
    """What may be sent to the model: likely secrets replaced (unless --no-redact), and a
    critical finding for each secret the change adds."""
    if not settings.redact:
        return files, [], context
    redaction = secrets.redact_files(files, secrets.secrets_rule(rules.rules))
    if redaction.redacted:
        log.info("%d likely secret(s) replaced before anything is sent to the model",
                 redaction.redacted)
    return (list(redaction.files), redaction.findings,
            prompt.Context(secrets.redact_text(context.title),
                           secrets.redact_text(context.description)))


def _ask(model: ModelClient, requests: Sequence[prompt.Request]
         ) -> tuple[list[tuple[prompt.Request, ModelAnswer]], list[diff.Skipped]]:
    """Every request's answer; a request that fails for good leaves its files not reviewed
    (with a warning), and so does every request the deadline left unasked. When nothing was
    answered, the first error is raised alone (a review of nothing is not posted, and the
    job's one error line says why)."""
    answered: list[tuple[prompt.Request, ModelAnswer]] = []
    failures: list[tuple[prompt.Request, ModelError | DeadlineExceeded]] = []
    for request in requests:
        if failures and isinstance(failures[-1][1], DeadlineExceeded):
            failures.append((request, failures[-1][1]))  # no request starts after it
            continue
        try:
            answered.append((request, model.review(request)))
        except (ModelError, DeadlineExceeded) as exc:
            failures.append((request, exc))
    if failures and not answered:
        raise failures[0][1]
    failed: list[diff.Skipped] = []
    for request, error in failures:
        late = isinstance(error, DeadlineExceeded)
        if not late:
            log.warning("a model request failed (%s); its files are listed as not reviewed",
                        error)
        reason = ("not asked: --deadline reached" if late
                  else f"the model failed: {one_line(str(error), 160)}")
        failed += [diff.Skipped(p, reason, limit=True) for p in request.files]
    if any(isinstance(e, DeadlineExceeded) for _, e in failures):
        log.warning("--deadline reached: what was answered is posted, the rest is listed as "
                    "not reviewed")
    return answered, failed


def _source(settings: Settings) -> tuple[GitLab | None, Source]:
    if settings.local:
        return None, _local(settings)
    target = resolve_target(settings)
    client = _gitlab(settings, target)
    return client, _merge_request(client, target)


def _gitlab(settings: Settings, target: Target) -> GitLab:
    token = reveal(settings.token)
    if token is None and not settings.dry_run:
        job = " (CI_JOB_TOKEN cannot read diffs or post notes)" if settings.ci_job_token else ""
        raise ConfigError(f"no GitLab token{job}: set REVIEWER_GITLAB_TOKEN to a project access "
                          "token with the api scope, or pass --token")
    return _client(settings, target.url, Clock(settings.deadline))


def _client(settings: Settings, url: str, clock: Clock) -> GitLab:
    origins = Origins(token=settings.origin("token"), project=settings.origin("project"),
                      mr=settings.origin("mr"))
    return GitLab(url, reveal(settings.token), timeout=settings.timeout,
                  max_file_bytes=settings.max_file_bytes, retries=settings.retries,
                  clock=clock, origins=origins)


def _rules(settings: Settings, client: GitLab | None, source: Source
           ) -> tuple[spec.Spec, list[str]]:
    """The spec, and what the summary must say about it.

    A spec folder inside the reviewed project (in CI) is read from the target branch at the
    MR's base, so a merge request cannot rewrite the rules that judge it.
    """
    folder = spec_project.project_folder(settings.spec, settings.spec_dir,
                                         settings.ci_project_dir)
    mr = source.mr
    if folder is None or client is None or mr is None:
        return spec.from_settings(settings), []
    ref = mr.base_sha or mr.target_branch
    rules = spec.load_files(spec_project.read(client.gl, mr.project_id, folder, ref),
                            f"{folder or '.'} on {mr.target_branch}", mr.target_branch,
                            mr.base_sha or None)
    changed = [p for c in mr.changes for p in (c.old_path, c.new_path)]
    if not spec_project.changes_rules(changed, folder):
        return rules, []
    return rules, [f"This merge request changes the review rules in {folder or '.'}: they were "
                   f"read from the target branch {mr.target_branch}, and the change is reviewed "
                   "like any other file."]


def _merge_request(client: GitLab, target: Target) -> Source:
    mr = client.fetch(target.project, client.find_iid(target))
    return Source(mr.changes, prompt.Context(mr.title, mr.description), mr=mr)


def _local(settings: Settings) -> Source:
    local = read_change(settings.repo, settings.base, settings.head)
    return Source(local.changes, prompt.Context(local.title, ""), local=local)


def assemble(settings: Settings, source: Source, rules: spec.Spec, read: Read,
             policy: list[diff.Skipped], model: ModelClient, notes: Sequence[str] = ()
             ) -> Review:
    """The review artifact: findings checked against the diff, one score, one verdict, and
    the coverage that says how much of the change was read."""
    ids = frozenset(r.id for r in rules.rules)
    answers = [a for _, a in read.answered]
    placed = [check.place(check.cite(f, ids), read.sent) for a in answers for f in a.findings]
    # Every file was scanned for secrets in full, sent to the model or not.
    ours = [check.place(f, {f.path: f for f in read.files}) for f in read.secrets]
    findings = check.outside_change(secrets.merge(ours, placed), _paths(source.changes))
    counted = check.in_change(findings)  # invented files neither cap, decide nor gate
    weights = [sum(read.sent[p].changed_lines for p in r.files) for r, _ in read.answered]
    covered = coverage.measure(read.reviewed, policy, read.not_reviewed,
                               {f.path: f for f in read.files})
    score = check.cap_score(check.merge_score(answers, weights), counted)
    verdict = check.incomplete_verdict(
        check.consistent_verdict(check.merge_verdict(answers), counted), covered.complete)
    # Requests often answer with the same words: each summary once, in order.
    summary = "\n\n".join(dict.fromkeys(a.summary.strip() for a in answers if a.summary.strip()))
    if not answers:
        summary = "" if read.not_reviewed else coverage.nothing_to_review(policy)
    notice = coverage.incomplete_notice(covered)
    summary = "\n\n".join(p for p in (notice, *notes, summary) if p)
    return Review(
        generated_at=datetime.now(UTC), tool_version=__version__,
        merge_request=_mr_info(source.mr, settings.redact), local=_local_info(source.local),
        model=ModelInfo(name=settings.model, host=settings.model_host,
                        structured_output=model.mode if answers else None),
        spec=SpecInfo(source=rules.source, ref=rules.ref, commit=rules.commit,
                      rules=[r.id for r in rules.rules]),
        score=score, verdict=verdict, summary=summary, findings=findings,
        files_reviewed=list(read.reviewed),
        skipped_files=[SkippedFile(path=s.path, reason=s.reason) for s in policy],
        coverage=covered, usage=model.usage, timings={},
    )


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
