"""One clock for the whole run: --deadline counts from the start of the process."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

STARTED = time.monotonic()  # as early as the process imports us: cli.py imports this first


@dataclass(frozen=True)
class Clock:
    """The run's deadline (seconds from the process start), or none."""

    deadline: float | None = None
    started: float = field(default=STARTED)

    def elapsed(self) -> float:
        """Seconds since the process started."""
        return time.monotonic() - self.started

    def remaining(self) -> float | None:
        """Seconds left before the deadline (never below 0), or None without a deadline."""
        if self.deadline is None:
            return None
        return max(0.0, self.deadline - self.elapsed())

    def expired(self) -> bool:
        """True once the deadline has passed: no new request may start."""
        left = self.remaining()
        return left is not None and left <= 0
