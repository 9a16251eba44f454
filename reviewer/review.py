"""Orchestration, top to bottom: source -> diff -> spec -> redact -> prompt -> model -> artifact
-> outputs."""

from __future__ import annotations

import importlib
import logging
import threading
import time
from dataclasses import dataclass
from secrets import token_hex
from typing import TYPE_CHECKING

from reviewer import (
    artifact,
    ask,
    check,
    diff,
    progress,
    prompt,
    publish,
    rerun,
    secrets,
    spec,
    spec_project,
)
from reviewer import context as context_window
from reviewer.artifact import Read, Source
from reviewer.clock import Clock
from reviewer.config import Settings, reveal
from reviewer.errors import ConfigError, GitLabError, UsageError
from reviewer.model import Finding, Review
from reviewer.server import ServerFacts

if TYPE_CHECKING:
    from reviewer.gitlab import GitLab, Target
    from reviewer.gitlab_http import Origins

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """What a run produced, for cli.py to print and turn into an exit code."""

    review: Review
    posted: publish.Posted | None = None
    gate_failure: str | None = None
    incomplete: bool = False  # files that needed review were not reviewed
    asked: int = 0  # model requests built (a repair or a shorter answer is not one)


def run(settings: Settings, server: ServerFacts | None = None) -> Outcome:
    """Review one change and publish the result as settings ask.

    server: what earlier reviews in this process learned about the model server (its context
    window, the output mode it accepts), shared by `reviewer eval`'s cases; a fresh one when
    None. Raises ModelError when every model request failed (nothing misleading is written or
    posted), and the other ReviewerErrors of its stages.
    """
    started = time.monotonic()
    server = ServerFacts() if server is None else server
    warm = _warm_up()
    _check_outputs(settings)
    client, source = _source(settings)
    rules, notes = _rules(settings, client, source)
    files, skipped = diff.select(source.changes, settings.exclude, settings.max_file_bytes)
    files, found, context = _redacted(settings, rules, files, source.context)
    split = _split(settings, client, source, rules, files)
    to_review = split.review if split else files  # --incremental: what changed since the last run
    max_input, max_output, sized = _budget(settings, server) if to_review else (
        settings.max_input_tokens, settings.max_output_tokens, False)
    tag = f"mr-data-{token_hex(4)}"  # unguessable, so the diff cannot close it
    requests, too_big = prompt.build(to_review, rules, context, max_input, tag)
    if any(r.condensed for r in requests):
        _say_condensed(rules, max_input, sized)
    unsent = {s.path for s in too_big}
    # Only what the model saw can take a finding.
    by_path = {f.path: f for f in to_review if f.path not in unsent}
    log.info("%d file(s) to review (%d too large for a request), %d skipped by policy, %d "
             "rule(s) from %s, %d request(s) to %s on %s", len(to_review), len(too_big),
             sum(1 for s in skipped if not s.limit), len(rules.rules), rules.source,
             len(requests), settings.model, settings.model_host)
    warm.join()
    from reviewer.llm import ModelClient

    model = ModelClient(settings.base_url, reveal(settings.api_key), settings.model,
                        max_output, settings.timeout, settings.model_host,
                        retries=settings.retries, clock=Clock(settings.deadline), facts=server)
    asked = time.monotonic()
    shown = progress.choose(quiet=settings.quiet, in_ci=settings.in_ci,
                            gitlab_ci=settings.in_gitlab_ci)
    answered, failed = ask.every(model, requests, settings.concurrency, shown)
    timings = {"model_s": round(time.monotonic() - asked, 3),
               "total_s": round(time.monotonic() - started, 3)}
    limits = [s for s in skipped if s.limit] + too_big + failed
    read = Read(files, by_path, answered, limits, found, split)
    review = artifact.assemble(settings, source, rules, read,
                      [s for s in skipped if not s.limit], model, notes
                      ).model_copy(update={"timings": timings})
    carried = split.carried if split else {}
    posted = _publish(settings, client, source, review, by_path | carried,
                      split.touched if split else frozenset())
    gate = check.gate(review.score, check.in_change(review.findings), settings.fail_under,
                      settings.fail_on)
    return Outcome(review, posted, gate, incomplete=not review.coverage.complete,
                   asked=len(requests))


def _warm_up() -> threading.Thread:
    """Import the model client (the openai SDK: a third of a second) in the background, while
    the run reads GitLab or git; the caller joins before asking the model. Python's import
    lock makes a second import of the same module wait for the first, never run twice. Not a
    daemon: a run that fails early waits for the import to end rather than finalize the
    interpreter under a thread still importing (which can crash at exit)."""
    thread = threading.Thread(target=importlib.import_module, args=("reviewer.llm",),
                              name="warm-up")
    thread.start()
    return thread


def _check_outputs(settings: Settings) -> None:
    # Fail before the expensive part: an unwritable output would lose the model's answers.
    publish.check_writable(settings.output, "--output")
    if settings.codequality:
        publish.check_writable(settings.codequality, "--codequality")
        if settings.codequality.resolve() == settings.output.resolve():
            raise UsageError(f"--codequality and --output are both {settings.output}: the "
                             "report would replace the review; give each its own file")


def _split(settings: Settings, client: GitLab | None, source: Source, rules: spec.Spec,
           files: list[diff.FileDiff]) -> rerun.Split | None:
    """--incremental: the files changed since the earlier review of the merge request, and
    the findings of the others carried over (None: every file, as without an earlier run)."""
    if not (settings.incremental_on and client and source.mr):
        return None
    from reviewer import earlier

    return earlier.plan(client, source.mr, rules, settings.model, files)


def _publish(settings: Settings, client: GitLab | None, source: Source, review: Review,
             by_path: dict[str, diff.FileDiff], touched: frozenset[str]
             ) -> publish.Posted | None:
    """Files first (review.json before anything is posted), then the merge request."""
    publish.write_artifact(review, settings.output)
    if settings.codequality:
        publish.write_codequality(review, settings.codequality, by_path)
    if not (client and source.mr and not settings.dry_run):
        return None
    # --deadline stops new model requests, not the posting of what was answered.
    poster = _client(settings, client.url, Clock(), client.origins) if settings.deadline \
        else client
    try:
        return publish.post(poster, source.mr, review, by_path, settings.max_inline,
                            settings.inline, settings.artifact, touched)
    except GitLabError as exc:
        # The review itself is not lost: say where it is, so a retry or a person can use it.
        raise GitLabError(f"{exc} (the review is saved in {settings.output})") from None


def _budget(settings: Settings, server: ServerFacts) -> tuple[int, int, bool]:
    """Prompt and answer tokens per request, sized from the context the server says the model
    has (asked once, briefly) so that both fit; an explicit --max-input-tokens wins, and the
    answer's reservation shrinks to fit beside it. The flag says whether the size is known
    (from the server or the user) rather than the default."""
    window = server.window(lambda: context_window.detect(settings.base_url,
                                                         reveal(settings.api_key), settings.model))
    given = settings.model_fields_set
    flag = settings.max_input_tokens if "max_input_tokens" in given else None
    max_input, max_output = context_window.input_budget(
        window, settings.max_output_tokens, flag, settings.max_input_tokens)
    if window is not None and window.note:
        log.warning("%s", window.note)  # once, loudly: Ollama will cut longer prompts
    log.info("budget: %d prompt + %d answer tokens per request (%s)", max_input, max_output,
             window.source if window else "--max-input-tokens" if flag else "default")
    return max_input, max_output, window is not None or flag is not None


def _say_condensed(rules: spec.Spec, max_input: int, sized: bool) -> None:
    """Once: the rules went condensed, and the budget that would carry them in full. A warning
    when the size is the server's or the user's; with the default budget (a server that does
    not say its context) only with --verbose, or every run against such a server would warn."""
    full = prompt.full_rules_tokens(rules)
    log.log(logging.WARNING if sized else logging.INFO,
            "the full review rules do not fit beside the diff in %d-token requests: they are "
            "sent condensed (id, severity, title, first sentence); a larger context gives "
            "better reviews (about %d prompt tokens for the full rules: raise the server's "
            "context or --max-input-tokens)", max_input, full)


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


def _source(settings: Settings) -> tuple[GitLab | None, Source]:
    if settings.diff:
        return None, _diff_file(settings.diff)
    if settings.local:
        return None, _local(settings)
    from reviewer.gitlab import resolve_target  # python-gitlab: only for a merge request

    target = resolve_target(settings)
    client = _gitlab(settings, target)
    return client, _merge_request(client, target)


def _gitlab(settings: Settings, target: Target) -> GitLab:
    token = reveal(settings.token)
    if token is None and not settings.dry_run:
        job = " (CI_JOB_TOKEN cannot read diffs or post notes)" if settings.ci_job_token else ""
        raise ConfigError(f"no GitLab token{job}: set REVIEWER_GITLAB_TOKEN to a project access "
                          "token with the api scope, or pass --token")
    from reviewer.gitlab import origins

    return _client(settings, target.url, Clock(settings.deadline), origins(settings, target))


def _client(settings: Settings, url: str, clock: Clock, named: Origins) -> GitLab:
    # GitLab answers in seconds: its requests keep the adapter's own timeout, not the model's.
    from reviewer.gitlab import GitLab

    return GitLab(url, reveal(settings.token), max_file_bytes=settings.max_file_bytes,
                  retries=settings.retries, clock=clock, origins=named)


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
    mr = client.fetch(*client.find(target))
    return Source(mr.changes, prompt.Context(mr.title, mr.description), mr=mr)


def _local(settings: Settings) -> Source:
    from reviewer.localgit import read_change  # GitPython: only for a local review

    local = read_change(settings.repo, settings.base, settings.head)
    return Source(local.changes, prompt.Context(local.title, ""), local=local)


def _diff_file(name: str) -> Source:
    from reviewer.patchfile import read_patch

    patch = read_patch(name)
    return Source(patch.changes, prompt.Context("", ""), diff_file=patch.info)
