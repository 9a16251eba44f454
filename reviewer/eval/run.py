"""Run a corpus: every case (times --repeat) through `review --diff`'s own path, in process.

Each run is review.run with the case's change.diff as --diff and the same model settings a
user would give; its artifact goes to a scratch folder. A case whose review fails is kept,
with the error, and counts its defects as missed.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from reviewer import __version__, review, spec
from reviewer.config import Settings
from reviewer.errors import ModelError, ReviewerError, UsageError
from reviewer.eval import corpus
from reviewer.eval.corpus import Case
from reviewer.eval.metrics import summarize
from reviewer.eval.results import CaseResult, CaseRun, EvalResult, Figures, Found
from reviewer.llm_errors import one_line
from reviewer.model import ModelInfo, Review, SpecInfo
from reviewer.server import ServerFacts

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Shard:
    """Part index (1-based) of total: the cases whose position, by id, is index-1 mod total."""

    index: int = 1
    total: int = 1

    @property
    def label(self) -> str | None:
        return f"{self.index}/{self.total}" if self.total > 1 else None

    def take(self, cases: Sequence[Case]) -> list[Case]:
        ordered = sorted(cases, key=lambda c: c.id)
        return [c for n, c in enumerate(ordered) if n % self.total == self.index - 1]


def parse_shard(text: str | None, settings: Settings) -> Shard:
    """--shard I/N, else GitLab's CI_NODE_INDEX/CI_NODE_TOTAL (a job's `parallel: N`)."""
    name = "--shard / REVIEWER_EVAL_SHARD"  # either may have given it: name both
    if text is None:
        if not (settings.ci_node_index and settings.ci_node_total):
            return Shard()
        name, text = "CI_NODE_INDEX/CI_NODE_TOTAL", \
            f"{settings.ci_node_index}/{settings.ci_node_total}"
    index, _, total = text.partition("/")
    if not (index.strip().isdigit() and total.strip().isdigit()):
        raise UsageError(f"{name} {text!r}: expected I/N, e.g. 2/4 (the second of four parts)")
    return _checked(int(index), int(total), name)


def _checked(index: int, total: int, name: str) -> Shard:
    if not 1 <= index <= total:
        raise UsageError(f"{name}: part {index} of {total} does not exist (1 <= I <= N)")
    return Shard(index, total)


def run(settings: Settings, cases: Sequence[Case], *, repeat: int, tolerance: int,
        shard: Shard, advance: Callable[[CaseRun], None] = lambda r: None) -> EvalResult:
    """Review the shard's cases repeat times each, settings.concurrency at once (and at most
    that many model requests in flight: a case's own requests go one at a time)."""
    mine = shard.take(cases)
    jobs = [(c, n) for n in range(repeat) for c in mine]
    server = ServerFacts()  # probed once, its output mode negotiated once, for every case
    # The spec loads (a bad one fails) before any request, and a spec URL is cloned once.
    with spec.local_copy(settings) as (rules, on_disk), \
            tempfile.TemporaryDirectory(prefix="reviewer-eval-") as scratch, \
            ThreadPoolExecutor(max_workers=settings.concurrency,
                               thread_name_prefix="case") as pool:
        check(mine, rules)
        def one(job: tuple[Case, int]) -> tuple[CaseRun, Review | None]:
            done = _one(on_disk, job[0], job[1], Path(scratch), server)
            advance(done[0])
            return done
        outcomes = list(pool.map(one, jobs))
    reviews = [r for _, r in outcomes if r is not None]
    if jobs and not reviews:
        raise ModelError(f"no case could be reviewed: {outcomes[0][0].error}")
    runs = [r for r, _ in outcomes]
    results = [CaseResult(id=c.id, title=c.meta.title, language=c.meta.language,
                          clean=c.meta.clean, tags=c.meta.tags, defects=c.defects,
                          figures=Figures(), runs=tuple(r for r in runs if r.case == c.id))
               for c in mine]
    model = reviews[0].model if reviews else ModelInfo(name=settings.model,
                                                       host=settings.model_host)
    return summarize(results, tolerance=tolerance, repeat=repeat, tool_version=__version__,
                     model=model, shard=shard.label,
                     spec=SpecInfo(source=rules.source, ref=rules.ref, commit=rules.commit,
                                   rules=[r.id for r in rules.rules]))


def check(cases: Sequence[Case], rules: spec.Spec) -> None:
    """Before any request: UsageError for a case no finding could ever match (a broken diff,
    a defect off it), a warning for rules the spec does not have (a corpus written for other
    rules: their defects can be found, never named right)."""
    bad = [p for c in cases for p in corpus.problems(c)]
    if bad:
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise UsageError(f"{bad[0]}{more}: fix the case (eval/README.md)")
    unknown = corpus.unknown_rules(cases, [r.id for r in rules.rules])
    if unknown:
        log.warning("the corpus names rule(s) %s that spec %s does not have: no finding can "
                    "name them, so rule accuracy counts their matches as wrong",
                    ", ".join(unknown), rules.source)


def _one(settings: Settings, case: Case, repeat: int, scratch: Path, server: ServerFacts
         ) -> tuple[CaseRun, Review | None]:
    """One review of one case, as `reviewer review --diff change.diff --dry-run` runs it."""
    mine = settings.model_copy(update={
        "diff": str(case.diff), "output": scratch / f"{case.id}.{repeat}.json",
        "codequality": None, "dry_run": True, "quiet": True, "fail_under": None,
        "fail_on": None,
        # --concurrency is the cases at once: each asks one request at a time, so at most
        # that many are in flight (not its square).
        "concurrency": 1})
    started = time.monotonic()
    try:
        outcome = review.run(mine, server)
    except ReviewerError as exc:
        return CaseRun(case=case.id, repeat=repeat, error=one_line(str(exc), 500),
                       latency_s=round(time.monotonic() - started, 3)), None
    done = outcome.review
    return CaseRun(
        case=case.id, repeat=repeat,
        findings=tuple(Found(path=f.path, line=f.line, end_line=f.end_line, side=f.side,
                             severity=f.severity, rule=f.rule, placed=f.placed,
                             title=f.title) for f in done.findings),
        latency_s=round(time.monotonic() - started, 3),
        tokens=done.usage.prompt_tokens + done.usage.completion_tokens,
        requests=done.usage.requests, follow_ups=max(0, done.usage.requests - outcome.asked),
    ), done
