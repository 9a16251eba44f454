"""Progress of the model requests, on stderr (stdout carries the result and may be piped).

On a terminal, a bar (requests done of all, tokens, time elapsed); in CI, one log line per
request, inside a collapsible section of GitLab's job log; nothing with --quiet. Requests end
in parallel threads, so every implementation is safe to advance from several at once.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import IO, Any, Protocol, TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from reviewer.model import Usage

SECTION = "reviewer_model_requests"  # GitLab allows letters, digits, _ . - in a section's name
NAMED_FILES = 3  # a request's files named in its line; the rest are counted


@dataclass(frozen=True)
class Step:
    """One model request that ended: answered, failed, or stopped by the deadline."""

    number: int  # 1-based, in the requests' order (they end in any order)
    files: tuple[str, ...]
    seconds: float
    tokens: Usage  # this request's own, its follow-ups (repair, shorter answer) included
    failure: str | None = None  # why its files are not reviewed; None when it was answered


class Shown(Protocol):
    """Where the progress of a run's model requests goes."""

    def start(self, total: int) -> None: ...

    def advance(self, step: Step) -> None: ...

    def close(self) -> None: ...


def choose(*, quiet: bool, in_ci: bool, gitlab_ci: bool, console: Console | None = None
           ) -> Shown:
    """The progress a run shows on stderr (console, by default rich's stderr console).

    quiet: none. in_ci: a line per request, inside a GitLab log section when gitlab_ci (a job
    log is read later, as text, even where the runner gives the job a pseudo-terminal). Else a
    bar when stderr is a terminal, and nothing when it is not: there a script, a hook or an
    editor reads stderr for the one actionable line of a failure (--verbose logs each step).
    """
    console = console or Console(stderr=True)
    if quiet:
        return Silent()
    if in_ci:
        return Lines(console.file, section=gitlab_ci)
    return Bar(console) if console.is_terminal else Silent()


class Silent:
    """No progress."""

    def start(self, total: int) -> None:
        """Nothing to show."""

    def advance(self, step: Step) -> None:
        """Nothing to show."""

    def close(self) -> None:
        """Nothing to close."""


class Lines:
    """One line per request for a log; with section=True, inside a collapsible section.

    GitLab's markers (https://docs.gitlab.com/ci/jobs/job_logs/#custom-collapsible-sections):
    ``\\e[0Ksection_start:UNIX_TIMESTAMP:SECTION_NAME[collapsed=true]\\r\\e[0KHeader text`` and
    ``\\e[0Ksection_end:UNIX_TIMESTAMP:SECTION_NAME\\r\\e[0K``. The section starts expanded: a
    warning logged while requests run lands inside it, and must not be hidden.
    """

    def __init__(self, stream: IO[str], *, section: bool,
                 clock: Callable[[], float] = time.time) -> None:
        self._stream = stream
        self._section = section
        self._clock = clock
        self._lock = threading.Lock()
        self._total = 0
        self._open = False

    def start(self, total: int) -> None:
        """The header line (the section's start marker first, in GitLab)."""
        self._total, self._open = total, total > 0
        if not self._open:
            return
        marker = f"\x1b[0Ksection_start:{int(self._clock())}:{SECTION}\r\x1b[0K" \
            if self._section else ""
        self._write(f"{marker}reviewer: {total} model request(s)")

    def advance(self, step: Step) -> None:
        """The request's line: which of how many, its files, its tokens and seconds."""
        self._write(f"reviewer: {describe(step, self._total)}")

    def close(self) -> None:
        """The section's end marker, once."""
        if self._open and self._section:
            self._write(f"\x1b[0Ksection_end:{int(self._clock())}:{SECTION}\r\x1b[0K")
        self._open = False

    def _write(self, line: str) -> None:
        with self._lock:  # whole lines, whichever thread ends first
            self._stream.write(line + "\n")
            self._stream.flush()


def describe(step: Step, total: int) -> str:
    """A request's line, e.g. ``request 3/8 answered in 1.2 s: a.py, b.py, c.py and 2 more;
    1500 prompt + 200 completion tokens``; a request not answered ends with why."""
    done = f"answered in {step.seconds:.1f} s" if step.failure is None \
        else f"not reviewed after {step.seconds:.1f} s"
    line = (f"request {step.number}/{total} {done}: {named(step.files)}; "
            f"{step.tokens.prompt_tokens} prompt + {step.tokens.completion_tokens} completion "
            "tokens")
    return line if step.failure is None else f"{line}; {step.failure}"


def named(files: Sequence[str], most: int = NAMED_FILES) -> str:
    """The first few files, and how many more."""
    shown = ", ".join(files[:most]) or "no files"
    return f"{shown} and {len(files) - most} more" if len(files) > most else shown


class Bar:
    """A rich progress bar on a terminal: requests done of all, tokens, failures, elapsed.

    It disappears when the requests are done. While it shows, the log's lines (a warning, or
    --verbose) are printed above it rather than through it.
    """

    def __init__(self, console: Console) -> None:
        self._progress = Progress(
            TextColumn("reviewing"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[tokens]} tokens{task.fields[failed]}"),
            TimeElapsedColumn(), console=console, transient=True, redirect_stdout=False)
        self._lock = threading.Lock()
        self._task: TaskID | None = None
        self._tokens = self._failed = 0
        self._moved: list[logging.StreamHandler[Any]] = []
        self._stderr = sys.stderr

    def start(self, total: int) -> None:
        """Show the bar (none for no requests)."""
        if total == 0:
            return
        self._task = self._progress.add_task("model requests", total=total, tokens=0,
                                             failed="")
        self._stderr = sys.stderr
        self._progress.start()  # on a terminal, sys.stderr now prints above the bar
        self._moved = _move_logs(self._stderr, sys.stderr)

    def advance(self, step: Step) -> None:
        """One more request done."""
        if self._task is None:
            return
        with self._lock:  # the sums, from several threads
            self._tokens += step.tokens.prompt_tokens + step.tokens.completion_tokens
            self._failed += step.failure is not None
            failed = f", {self._failed} not reviewed" if self._failed else ""
            self._progress.update(self._task, advance=1, tokens=self._tokens, failed=failed)

    def close(self) -> None:
        """Remove the bar; the log writes to stderr again."""
        if self._task is None:
            return
        self._progress.stop()
        for handler in self._moved:
            handler.setStream(self._stderr)
        self._task, self._moved = None, []


def _move_logs(old: TextIO, new: TextIO) -> list[logging.StreamHandler[Any]]:
    """Point the root logger's handlers that write to old at new; the ones moved. A handler
    keeps the stream it was made with, so rich's redirection of sys.stderr alone would let a
    log line write through the bar."""
    if new is old:
        return []
    moved = [h for h in logging.getLogger().handlers
             if isinstance(h, logging.StreamHandler) and h.stream is old]
    for handler in moved:
        handler.setStream(new)
    return moved
