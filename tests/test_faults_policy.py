"""The retry policy alone: what it retries, how long it waits, and where it stops."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from reviewer.clock import Clock
from reviewer.errors import DeadlineExceeded
from reviewer.retry import (
    MAX_RETRY_AFTER,
    Policy,
    TimedOut,
    Transient,
    attempts,
    never,
    retry_after,
    within,
)


class Passing(Exception):
    """A failure the test's classifier calls transient."""


class Permanent(Exception):
    pass


def classify(exc: Exception) -> Transient | None:
    if isinstance(exc, Passing):
        return Transient("HTTP 503", getattr(exc, "after", None),
                         resend=getattr(exc, "resend", True))
    return None


class Flaky:
    """Fails with the given exceptions in turn, then answers "ok"; counts its calls."""

    def __init__(self, *failures: Exception) -> None:
        self.failures = list(failures)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return "ok"


def policy(retries: int = 3, deadline: float | None = None, jitter: float = 0.0,
           slept: list[float] | None = None, **extra: float) -> Policy:
    """A policy on a clock started now, recording its sleeps instead of sleeping."""
    record = slept if slept is not None else []
    return Policy(retries, Clock(deadline, time.monotonic()), sleep=record.append,
                  jitter=lambda: jitter, **extra)


def after(seconds: float) -> Passing:
    exc = Passing()
    exc.after = seconds  # type: ignore[attr-defined]
    return exc


def test_a_passing_failure_is_retried_until_it_passes() -> None:
    slept: list[float] = []
    fn = Flaky(Passing(), Passing())
    assert policy(slept=slept).call(fn, "read", classify) == "ok"
    assert fn.calls == 3
    assert slept == [0.5, 1.0]  # equal jitter at its low end: half of 1, half of 2


def test_retries_n_means_at_most_n_plus_one_attempts() -> None:
    fn = Flaky(*[Passing() for _ in range(10)])
    with pytest.raises(Passing) as caught:
        policy(retries=2).call(fn, "read", classify)
    assert fn.calls == 3
    assert attempts(caught.value) == 3


def test_retries_zero_tries_once() -> None:
    fn = Flaky(Passing())
    with pytest.raises(Passing):
        policy(retries=0).call(fn, "read", classify)
    assert fn.calls == 1


def test_a_permanent_failure_is_never_retried() -> None:
    fn = Flaky(Permanent(), Permanent())
    with pytest.raises(Permanent):
        policy().call(fn, "read", classify)
    assert fn.calls == 1


def test_a_failure_that_must_not_be_resent_is_not_resent() -> None:
    # A prompt that timed out: the server may still be working on it.
    timed_out = Passing()
    timed_out.resend = False  # type: ignore[attr-defined]
    fn = Flaky(timed_out)
    with pytest.raises(Passing):
        policy().call(fn, "ask", classify)
    assert fn.calls == 1


def test_backoff_grows_exponentially_with_jitter_up_to_the_cap() -> None:
    low, high = policy(jitter=0.0, cap=6.0), policy(jitter=0.999, cap=6.0)
    assert [low.backoff(n) for n in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert [round(high.backoff(n), 2) for n in range(5)] == [1.0, 2.0, 4.0, 6.0, 6.0]
    assert policy(base=0.1).backoff(0) == 0.05


def test_the_wait_the_server_asked_for_replaces_the_backoff() -> None:
    slept: list[float] = []
    fn = Flaky(after(7.0), after(0.0))
    assert policy(slept=slept).call(fn, "read", classify) == "ok"
    assert slept == [7.0, 0.0]


def test_a_server_asking_for_too_long_a_wait_fails_the_call_now() -> None:
    slept: list[float] = []
    fn = Flaky(after(MAX_RETRY_AFTER + 1))
    with pytest.raises(Passing):
        policy(slept=slept).call(fn, "read", classify)
    assert slept == [] and fn.calls == 1


def test_no_attempt_starts_after_the_deadline() -> None:
    fn = Flaky()
    late = Policy(3, Clock(1.0, time.monotonic() - 5))
    with pytest.raises(DeadlineExceeded, match=r"^--deadline 1s reached: could not read"):
        late.call(fn, "read", classify)
    assert fn.calls == 0


def test_a_wait_that_would_pass_the_deadline_is_not_slept() -> None:
    slept: list[float] = []
    fn = Flaky(after(30.0))
    with pytest.raises(DeadlineExceeded) as caught:
        policy(deadline=3.0, slept=slept).call(fn, "read the diff", classify)
    assert slept == [] and fn.calls == 1
    assert str(caught.value).startswith("--deadline 3s reached: could not read the diff "
                                        "(last try: HTTP 503)")
    assert "REVIEWER_DEADLINE" in str(caught.value)


def test_a_passing_failure_after_the_deadline_is_the_deadlines() -> None:
    clock = Clock(0.2, time.monotonic())

    def slow() -> str:
        time.sleep(0.3)
        raise Passing

    with pytest.raises(DeadlineExceeded):
        Policy(3, clock).call(slow, "ask", classify)


def test_recover_finds_what_a_lost_write_created_instead_of_sending_it_again() -> None:
    fn = Flaky(Passing())
    assert policy().call(fn, "post", classify, recover=lambda: "found") == "found"
    assert fn.calls == 1


def test_recover_finding_nothing_sends_again() -> None:
    looked: list[int] = []

    def look() -> str | None:
        looked.append(1)
        return None

    fn = Flaky(Passing())
    assert policy().call(fn, "post", classify, recover=look) == "ok"
    assert fn.calls == 2 and looked == [1]


def test_never_tries_once() -> None:
    fn = Flaky(Passing())
    with pytest.raises(Passing):
        policy().call(fn, "post", never)
    assert fn.calls == 1


def test_budget_is_the_timeout_or_what_is_left_before_the_deadline() -> None:
    assert policy().budget(30.0) == 30.0
    assert 9.0 < policy(deadline=10.0).budget(30.0) <= 10.0
    assert policy(deadline=100.0).budget(30.0) == 30.0


@pytest.mark.parametrize(("headers", "seconds"), [
    ({"Retry-After": "1"}, 1.0),
    ({"retry-after": "120"}, 120.0),
    ({"Retry-After": "1.5"}, 1.5),
    ({"retry-after-ms": "250", "Retry-After": "9"}, 0.25),
    ({"Retry-After": "soon"}, None),
    ({"Retry-After": "-3"}, None),
    ({}, None),
])
def test_retry_after_reads_delay_seconds(headers: dict[str, str], seconds: float | None
                                         ) -> None:
    folded = {k.lower(): v for k, v in headers.items()}  # as HTTP clients fold names
    assert retry_after(folded) == seconds


def test_retry_after_reads_an_http_date() -> None:
    now = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    later = format_datetime(now + timedelta(seconds=42), usegmt=True)
    assert retry_after({"retry-after": later}, now.timestamp()) == 42.0
    earlier = format_datetime(now - timedelta(seconds=42), usegmt=True)
    assert retry_after({"retry-after": earlier}, now.timestamp()) == 0.0


def test_within_returns_the_answer_or_times_out_on_the_wall_clock() -> None:
    assert within(1.0, lambda: 42) == 42
    started = time.monotonic()
    with pytest.raises(TimedOut):
        within(0.2, lambda: time.sleep(5))
    assert time.monotonic() - started < 1.0
    with pytest.raises(Permanent):
        within(1.0, Flaky(Permanent()))
