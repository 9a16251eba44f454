"""The model phase: every request of a run asked, in parallel and bounded, fairly ordered, and
merged back in the requests' own order."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from reviewer import diff, progress, prompt
from reviewer.errors import DeadlineExceeded, ModelError
from reviewer.llm_errors import one_line
from reviewer.model import ModelAnswer, Usage

if TYPE_CHECKING:  # the openai SDK loads in the background (review._warm_up)
    from reviewer.llm import ModelClient

log = logging.getLogger(__name__)


def every(model: ModelClient, requests: Sequence[prompt.Request], concurrency: int,
         shown: progress.Shown
         ) -> tuple[list[tuple[prompt.Request, ModelAnswer]], list[diff.Skipped]]:
    """Every request's answer, at most concurrency in flight, kept in the requests' order (a
    run reads the same whatever answers first), each shown as it ends. A request that fails
    for good leaves its files not reviewed (with a warning), and so does every request the
    deadline left unanswered. When nothing was answered, the first error is raised alone (a
    review of nothing is not posted, and the job's one error line says why)."""
    shown.start(len(requests))
    # Every file's first part before any file's second: under --deadline a large file split
    # in many pieces must not leave the small files after it unread.
    order = sorted(range(len(requests)), key=lambda n: (requests[n].part, n))
    try:
        with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="model") as pool:
            done = dict(zip(order, pool.map(lambda n: _one(model, requests, n, shown), order),
                            strict=True))
        outcomes = [done[n] for n in range(len(requests))]
    finally:
        shown.close()  # before the warnings below, which must not sit inside a log section
    answered = [(r, o) for r, o in zip(requests, outcomes, strict=True)
                if isinstance(o, ModelAnswer)]
    failures = [(r, o) for r, o in zip(requests, outcomes, strict=True)
                if not isinstance(o, ModelAnswer)]
    if failures and not answered:
        raise failures[0][1]
    failed: list[diff.Skipped] = []
    for request, error in failures:
        if not isinstance(error, DeadlineExceeded):
            log.warning("a model request failed (%s); its files are listed as not reviewed",
                        error)
        failed += [diff.Skipped(p, _reason(error), limit=True) for p in request.files]
    if any(isinstance(e, DeadlineExceeded) for _, e in failures):
        log.warning("--deadline reached: what was answered is posted, the rest is listed as "
                    "not reviewed")
    return answered, failed


def _one(model: ModelClient, requests: Sequence[prompt.Request], index: int,
         shown: progress.Shown) -> ModelAnswer | ModelError | DeadlineExceeded:
    """One request's answer or why it has none, shown with its own tokens and seconds."""
    request, spent, started = requests[index], Usage(), time.monotonic()
    outcome: ModelAnswer | ModelError | DeadlineExceeded
    try:
        outcome = model.review(request, spent)
    except (ModelError, DeadlineExceeded) as exc:
        outcome = exc
    failure = None if isinstance(outcome, ModelAnswer) else _reason(outcome)
    shown.advance(progress.Step(index + 1, request.files, time.monotonic() - started, spent,
                                failure))
    return outcome


def _reason(error: ModelError | DeadlineExceeded) -> str:
    """Why a request's files are not reviewed."""
    if isinstance(error, DeadlineExceeded):
        return "not answered before --deadline"
    return f"the model failed: {one_line(str(error), 160)}"
