"""`review --diff FILE`: the change is a unified diff read from a file or stdin, no repository.

The bytes go through the same parser as the local mode (diff.split_patch: git's headers read
by gitpatch.py, each file decoded by text.decode), so a `git diff` saved to a file reviews as
the range it came from. Anything that is not a usable diff is the user's to fix: UsageError;
so is what only looks like one diff (patchforms.py: a combined diff from a merge, a coloured
diff, a patch series that changes a file twice), refused with what to run instead.
"""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass
from itertools import chain
from pathlib import Path

from reviewer.diff import Change, parse_change, split_patch
from reviewer.errors import ReviewerError, UsageError
from reviewer.model import DiffFileInfo
from reviewer.patchforms import patches, refuse_other_forms, refuse_repeats, refuse_word_diff
from reviewer.text import printable

STDIN = "-"
EXPECTED = "expected a unified diff as `git diff` prints it"


@dataclass(frozen=True)
class Patch:
    """A diff file read: its changes, and what identifies the file (for review.json)."""

    changes: tuple[Change, ...]
    info: DiffFileInfo


def read_patch(name: str) -> Patch:
    """The changes of the diff in file name (`-`: stdin); UsageError for a file that is
    missing, unreadable, empty or not one two-way diff (patchforms.py: coloured, combined, a
    series that changes a file twice)."""
    try:
        data = sys.stdin.buffer.read() if name == STDIN else _read(Path(name))
        info = DiffFileInfo(path=name, sha256=hashlib.sha256(data).hexdigest(), size=len(data))
        return Patch(_read_patch(data, "stdin" if name == STDIN else name), info)
    except UsageError as exc:
        # The message may quote the input (a name, a line the parser stopped at): a control
        # character in it would reach the terminal raw (an ESC recolours it, a CR hides text).
        raise UsageError(printable(str(exc))) from None


def _read_patch(data: bytes, shown: str) -> tuple[Change, ...]:
    if not data.strip():
        raise UsageError(f"--diff {shown} is empty: {EXPECTED} (git diff main > change.diff)")
    refuse_other_forms(data, shown)
    try:
        # Each mail or commit apart: a file's hunks never run on into the next mail's headers.
        series = [split_patch(part) for part in patches(data)]
        for change in chain.from_iterable(series):
            parse_change(change)  # a broken hunk is found now, not after the model is asked
    except ReviewerError as exc:
        refuse_word_diff(data, shown)  # a form git prints for people says so, not the parser
        raise UsageError(f"--diff {shown}: {str(exc).strip()}; {EXPECTED}") from None
    refuse_repeats(series, shown)
    changes = tuple(chain.from_iterable(series))
    if not changes:
        raise UsageError(f"--diff {shown} holds no file changes: {EXPECTED}")
    return changes


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"--diff {path}: no such file") from None
    except IsADirectoryError:
        raise UsageError(f"--diff {path} is a directory: give a diff file, or - for "
                         "stdin") from None
    except OSError as exc:
        raise UsageError(f"--diff {path} cannot be read: {exc.strerror or exc}") from None
