"""Orchestration, top to bottom: source -> diff -> spec -> prompt -> model -> checks -> outputs."""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from reviewer import __version__, check, diff, prompt, publish, spec
from reviewer.config import Settings, reveal
from reviewer.errors import ConfigError
from reviewer.gitlab import GitLab, MergeRequest, Target, resolve_target
from reviewer.llm import ModelClient
from reviewer.localgit import LocalChange, read_change
from reviewer.model import (
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


@dataclass(frozen=True)
class Source:
    changes: Sequence[diff.Change]
    context: prompt.Context
    mr: MergeRequest | None = None
    local: LocalChange | None = None


def run(settings: Settings) -> Outcome:
    """Review one change and publish the result as settings ask."""
    started = time.monotonic()
    client, source = _source(settings)
    rules = spec.from_settings(settings)
    files, skipped = diff.select(source.changes, settings.exclude)
    tag = f"mr-data-{secrets.token_hex(4)}"  # unguessable, so the diff cannot close it
    requests, too_big = prompt.build(files, rules, source.context, settings.max_input_tokens, tag)
    unsent = {s.path for s in too_big}
    # Only what the model saw counts as reviewed, and only its lines can take a finding.
    by_path = {f.path: f for f in files if f.path not in unsent}
    log.info("%d file(s) to review, %d skipped, %d rule(s) from %s, %d request(s) to %s on %s",
             len(files), len(skipped) + len(too_big), len(rules.rules), rules.source,
             len(requests), settings.model, settings.model_host)
    model = ModelClient(settings.base_url, reveal(settings.api_key), settings.model,
                        settings.max_output_tokens, settings.timeout, settings.model_host)
    asked = time.monotonic()
    answers = [model.review(r) for r in requests]
    timings = {"model_s": round(time.monotonic() - asked, 3),
               "total_s": round(time.monotonic() - started, 3)}
    weights = [sum(by_path[p].changed_lines for p in r.files) for r in requests]
    review = assemble(settings, source, rules, by_path, [*skipped, *too_big], answers, weights,
                      model).model_copy(update={"timings": timings})
    publish.write_artifact(review, settings.output)
    if settings.codequality:
        publish.write_codequality(review, settings.codequality, by_path)
    posted = None
    if client and source.mr and not settings.dry_run:
        posted = publish.post(client, source.mr, review, by_path, settings.max_inline,
                              settings.inline)
    return Outcome(review, posted, check.gate(review.score, review.findings,
                                              settings.fail_under, settings.fail_on))


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
    return GitLab(target.url, token, timeout=settings.timeout)


def _merge_request(client: GitLab, target: Target) -> Source:
    mr = client.fetch(target.project, client.find_iid(target))
    return Source(mr.changes, prompt.Context(mr.title, mr.description), mr=mr)


def _local(settings: Settings) -> Source:
    local = read_change(settings.repo, settings.base, settings.head)
    return Source(local.changes, prompt.Context(local.title, ""), local=local)


def assemble(settings: Settings, source: Source, rules: spec.Spec,
             by_path: dict[str, diff.FileDiff], skipped: list[diff.Skipped],
             answers: list[ModelAnswer], weights: list[int], model: ModelClient) -> Review:
    """The review artifact: findings checked against the diff, one score, one verdict."""
    ids = frozenset(r.id for r in rules.rules)
    findings = [check.place(check.cite(f, ids), by_path) for a in answers for f in a.findings]
    score = check.cap_score(check.merge_score(answers, weights), findings)
    verdict = check.consistent_verdict(check.merge_verdict(answers), findings)
    summary = "\n\n".join(a.summary.strip() for a in answers if a.summary.strip())
    if not answers:
        summary = "Nothing to review: every changed file was skipped." if skipped else \
            "Nothing to review: the change is empty."
    return Review(
        generated_at=datetime.now(UTC), tool_version=__version__,
        merge_request=_mr_info(source.mr), local=_local_info(source.local),
        model=ModelInfo(name=settings.model, host=settings.model_host,
                        structured_output=model.mode if answers else None),
        spec=SpecInfo(source=rules.source, ref=rules.ref, commit=rules.commit,
                      rules=[r.id for r in rules.rules]),
        score=score, verdict=verdict, summary=summary, findings=findings,
        files_reviewed=list(by_path),
        skipped_files=[SkippedFile(path=s.path, reason=s.reason) for s in skipped],
        usage=model.usage, timings={},
    )


def _mr_info(mr: MergeRequest | None) -> MergeRequestInfo | None:
    if mr is None:
        return None
    return MergeRequestInfo(project=mr.project_path, iid=mr.iid, web_url=mr.web_url, title=mr.title,
                            source_branch=mr.source_branch, target_branch=mr.target_branch,
                            base_sha=mr.base_sha, start_sha=mr.start_sha, head_sha=mr.head_sha)


def _local_info(local: LocalChange | None) -> LocalInfo | None:
    if local is None:
        return None
    return LocalInfo(repository=local.repository, base=local.base, head=local.head,
                     base_sha=local.base_sha, head_sha=local.head_sha)
