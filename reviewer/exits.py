"""How a command ends: an exit code and, on a failure, one actionable line on stderr, with
no secret in it, in a log line or in a traceback (tracebacks only with --verbose).

The exception tree (reviewer.errors) becomes exit codes here and nowhere else.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import Any, NoReturn, TextIO, TypeVar

import typer

from reviewer.errors import ReviewerError, UsageError

T = TypeVar("T")
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_GATE, EXIT_INCOMPLETE = 0, 1, 2, 3, 4


def guard(action: Callable[[], T], *, verbose: bool, secrets: Sequence[str] = ()) -> T:
    """Run action; a failure becomes one line on stderr and its exit code."""
    try:
        return action()
    except ReviewerError as exc:
        if verbose:
            _print_traceback(secrets)
        fail(redact(str(exc), secrets),
             EXIT_USAGE if isinstance(exc, UsageError) else EXIT_FAILED)
    except (KeyboardInterrupt, typer.Exit, BrokenPipeError):  # main() handles the pipe
        raise
    except Exception as exc:
        if verbose:
            _print_traceback(secrets)
        fail(redact(f"unexpected {type(exc).__name__}: {exc} (run with --verbose for the "
                    "traceback, and please report it)", secrets), EXIT_FAILED)


class StdoutReaderMayLeave:
    """sys.stdout that, once its reader has gone (`reviewer review ... | head`), writes on to
    /dev/null instead of raising BrokenPipeError: the run goes on (the review is written,
    posted, gated) and exits with its own code, not one the reader's leaving decided. Python's
    signal documentation recommends pointing stdout at /dev/null on EPIPE."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            self._gone()
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._gone()

    def _gone(self) -> None:
        _to_devnull(self._stream.fileno())

    def __getattr__(self, name: str) -> Any:  # isatty, encoding, fileno...: the stream's own
        return getattr(self._stream, name)


def closed_pipe() -> int:
    """The reader of stdout went away (`reviewer ... | head`): nothing more to say to it, and
    no error to report (what was written, review.json, stands). stdout then points at
    /dev/null so the interpreter's last flush does not fail again, as Python's signal
    documentation recommends for SIGPIPE; exit 1, as it does, since the output was cut."""
    _to_devnull(sys.stdout.fileno())
    return EXIT_FAILED


def _to_devnull(fd: int) -> None:
    """Point the file descriptor at /dev/null: later writes and the last flush succeed."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


def _print_traceback(secrets: Sequence[str]) -> None:
    # A library's exception may carry a URL with credentials: the traceback is redacted too.
    text = traceback.format_exc()
    for secret in secrets:
        text = text.replace(secret, "[redacted]")
    sys.stderr.write(text)


class Redacting(logging.Filter):
    """A log line never shows a secret in use, whatever message it carries."""

    def __init__(self, secrets: Sequence[str]) -> None:
        super().__init__()
        self.secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = redact(record.getMessage(), self.secrets), ()
        return True


def log_to_stderr(verbose: bool, secrets: Sequence[str], *extra: logging.Filter) -> None:
    """Our log on stderr as "reviewer: ..." lines: warnings always, each step only when
    verbose; only reviewer's own loggers (libraries' debug lines may carry URLs with
    credentials), redacted, then through the extra filters."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="reviewer: %(message)s", stream=sys.stderr, force=True)
    handler = logging.getLogger().handlers[0]
    for kept in (logging.Filter("reviewer"), Redacting(secrets), *extra):
        handler.addFilter(kept)


def redact(text: str, secrets: Sequence[str]) -> str:
    """text without the secrets, on one line (a message may carry a library's newlines)."""
    for secret in secrets:
        text = text.replace(secret, "[redacted]")
    return " ".join(text.split())


def fail(message: str, code: int) -> NoReturn:
    """End the command with code after one line on stderr ("error: " unless the review was
    done and only the gate or its coverage failed)."""
    kind = "" if code in (EXIT_GATE, EXIT_INCOMPLETE) else "error: "
    sys.stderr.write(f"reviewer: {kind}{message}\n")
    raise typer.Exit(code)


def usage_error(exc: Exception) -> int:
    """The exit code of one of click's errors, after its one line; anything else is raised.
    Known by shape, not class: typer 0.2x carries its own copy of click (typer._click), older
    typers use click itself, and typer's own handler tells NoArgsIsHelpError by name too."""
    code, message = getattr(exc, "exit_code", None), getattr(exc, "format_message", None)
    if not isinstance(code, int) or not callable(message):
        raise exc
    if type(exc).__name__ != "NoArgsIsHelpError":  # else the help is printed already
        ctx = getattr(exc, "ctx", None)
        hint = f" (see {ctx.command_path} --help)" if ctx is not None else ""
        sys.stderr.write(f"reviewer: error: {' '.join(f'{message()}{hint}'.split())}\n")
    return code
