"""One retry policy for every GitLab and model call, on the run's one clock.

Which failures pass (the adapters classify their own exceptions into a Transient):
HTTP 429 Too Many Requests (RFC 6585 §4), 500, 502, 503 and 504, and a connection that was
refused, reset or dropped before an answer. Every other status (400, 401, 403, 404, 422 ...)
is permanent and never tried again.

How long to wait before the next attempt: what the server asked for in ``Retry-After``
(RFC 9110 §10.2.3: delay-seconds or an HTTP-date; ``retry-after-ms`` too, which OpenAI sends and
the openai SDK reads), else exponential backoff with "equal jitter": attempt n waits between
half and all of ``min(cap, base * 2**n)`` seconds, so clients that failed together do not
come back together.

When to stop: after ``retries + 1`` attempts (--retries); when a server asks for a wait over
MAX_RETRY_AFTER; and at the clock's deadline (--deadline): no attempt starts after it, and no
wait runs past it — the call raises DeadlineExceeded at once instead of sleeping in vain.

No library: tenacity would give the loop and the backoff, but not RFC 9110's HTTP-date, nor a
deadline that also cuts each attempt's timeout and refuses a wait it cannot finish, nor the
look-before-resending step of a write (``recover``); those are most of this module.
"""

from __future__ import annotations

import email.utils
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from reviewer.clock import Clock
from reviewer.errors import DeadlineExceeded

log = logging.getLogger(__name__)
T = TypeVar("T")

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
BASE = 1.0  # seconds: the first backoff waits 0.5-1 s, the second 1-2 s, the third 2-4 s
CAP = 30.0  # seconds: the longest backoff
MAX_RETRY_AFTER = 120.0  # seconds: a server asking for a longer wait fails the call now


@dataclass(frozen=True)
class Transient:
    """A failure of the moment: why, and the wait the server asked for (seconds), if any.

    resend False: the request must not be sent again although the failure may pass (a model
    prompt that timed out: the server may still be working on it).
    """

    why: str
    retry_after: float | None = None
    resend: bool = True


Classify = Callable[[Exception], "Transient | None"]


def never(exc: Exception) -> Transient | None:
    """A classifier for calls tried once (a write that cannot look for what it created)."""
    return None


def retry_after(headers: Mapping[str, str] | None, now: float | None = None) -> float | None:
    """Seconds a server asked to wait (never below 0), or None when it did not say.

    ``retry-after-ms`` (OpenAI's, read by the openai SDK), then ``Retry-After`` as RFC 9110
    §10.2.3 allows it: delay-seconds ("120") or an HTTP-date ("Wed, 21 Oct 2015 07:28:00 GMT").
    """
    if not headers:
        return None
    for name, unit in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = (headers.get(name) or "").strip()
        if value.replace(".", "", 1).isdigit():
            return float(value) * unit
    when = (headers.get("retry-after") or "").strip()
    try:
        date = email.utils.parsedate_to_datetime(when) if when else None
    except (TypeError, ValueError, IndexError):
        return None
    if date is None or date.tzinfo is None:
        return None
    return max(0.0, date.timestamp() - (time.time() if now is None else now))


def attempts(exc: BaseException) -> int:
    """How many attempts of a call the policy made before exc ended it."""
    return int(getattr(exc, "reviewer_attempts", 1))


@dataclass(frozen=True)
class Policy:
    """--retries and --deadline for one adapter's calls.

    base and cap (seconds) shape the backoff; sleep and jitter are the clock's and the dice's,
    replaceable in tests.
    """

    retries: int = 3
    clock: Clock = field(default_factory=Clock)
    base: float = BASE
    cap: float = CAP
    sleep: Callable[[float], None] = time.sleep
    jitter: Callable[[], float] = random.random

    def call(self, fn: Callable[[], T], what: str, classify: Classify,
             recover: Callable[[], T | None] | None = None) -> T:
        """fn's result, trying again after a transient failure while the bounds allow.

        what completes "could not ..." in messages. recover runs before each new attempt of a
        write that may have reached the server: a result it finds (what the lost attempt
        created) is returned instead of sending again. Raises the last failure when the
        bounds stop the call, DeadlineExceeded when the deadline does.
        """
        attempt = 0
        while True:
            self.check(what)
            try:
                return fn()
            except Exception as exc:
                passing = classify(exc)
                setattr(exc, "reviewer_attempts", attempt + 1)  # noqa: B010
                if passing is None:
                    raise
                if self.clock.expired():
                    raise DeadlineExceeded(self.late(what, passing.why)) from None
                if not passing.resend or attempt >= self.retries:
                    raise
                self._wait(attempt, passing, what, exc)
            attempt += 1
            found = recover() if recover else None
            if found is not None:
                log.info("%s: found what the lost attempt created; not sending it again", what)
                return found

    def _wait(self, attempt: int, passing: Transient, what: str, exc: Exception) -> None:
        asked = passing.retry_after
        if asked is not None and asked > MAX_RETRY_AFTER:
            log.info("%s: the server asked to wait %.0fs, over %.0fs: not waiting", what,
                     asked, MAX_RETRY_AFTER)
            raise exc
        wait = asked if asked is not None else self.backoff(attempt)
        left = self.clock.remaining()
        if left is not None and wait >= left:
            raise DeadlineExceeded(self.late(what, passing.why)) from None
        log.info("could not %s (%s); attempt %d of %d in %.1fs", what, passing.why,
                 attempt + 2, self.retries + 1, wait)
        self.sleep(wait)

    def backoff(self, attempt: int) -> float:
        """Seconds before attempt number attempt + 2: equal jitter on base * 2**attempt."""
        ceiling = min(self.cap, self.base * 2.0 ** min(attempt, 32))
        return ceiling / 2 + self.jitter() * ceiling / 2

    def check(self, what: str) -> None:
        """Raise DeadlineExceeded when no new request may start."""
        if self.clock.expired():
            raise DeadlineExceeded(self.late(what))

    def budget(self, timeout: float) -> float:
        """The timeout (seconds) one attempt may use: timeout, or less before the deadline."""
        left = self.clock.remaining()
        return timeout if left is None else max(0.001, min(timeout, left))

    def late(self, what: str, why: str | None = None) -> str:
        """The one line for a call the deadline stopped."""
        limit = self.clock.deadline or 0.0
        last = f" (last try: {why})" if why else ""
        return (f"--deadline {limit:g}s reached: could not {what}{last}; raise --deadline "
                "(REVIEWER_DEADLINE) if the run needs longer")


class TimedOut(Exception):
    """A call did not finish within its seconds (see within)."""


def within(seconds: float, fn: Callable[[], T]) -> T:
    """fn's result if it comes within seconds (wall clock, end to end), else TimedOut.

    fn runs in a daemon thread that is abandoned on time-out: the caller gets control back
    when the time is up, whatever a library's per-read timeouts allow (a server that trickles
    bytes resets those at every read). fn's own exceptions are raised here.
    """
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # handed to the caller's thread
            box["error"] = exc

    worker = threading.Thread(target=run, name="reviewer-call", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise TimedOut(f"no answer within {seconds:g}s")
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]
