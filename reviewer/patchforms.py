"""What a `--diff` input may be besides one two-way diff, told apart before it is reviewed.

reviewer reads a unified diff of one base against one result. Other things come close enough
that the parser read them wrongly and silently (combined diffs, patch series) or refused them
in words that did not say what to change (coloured and word diffs):

- a combined diff. git's documentation ("COMBINED DIFF FORMAT" in git-diff(1), git-show(1),
  git-diff-tree(1)): `git diff` during a merge with conflicts and `git show` of a merge commit
  print `diff --cc <path>` (`diff --combined <path>` with -c) instead of `diff --git`, and hunks
  headed `@@@ -a,b -c,d +e,f @@@`, one `@` more than the merge has parents; every line has one
  column per parent, so no two-way reading of it is right (read as one, it came out empty and
  conflict markers passed unreviewed);
- a coloured diff (`git diff --color=always`, or a pager's screen saved): git wraps lines in
  ANSI SGR sequences (ESC '[' ... 'm', git-config(1) `color.diff.<slot>`), so no header or hunk
  line starts where a parser looks for it; a word diff (`--word-diff`) has no +/- column;
- a patch series. `git format-patch` writes one mail per commit, each starting
  `From <sha> Mon Sep 17 00:00:00 2001` (git-format-patch(1)); `git log -p` starts each commit
  with `commit <sha>` (git-log(1)). Each patch's line numbers count from the tree the patch
  before it left, so a file that two of them change has no one set of line numbers.

Any message here may quote the input: text.printable() makes it safe for a terminal.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from reviewer.diff import Change
from reviewer.errors import UsageError

# A coloured line starts with the escape: git's uncoloured lines never do (hunk lines start
# with ' ', '+', '-' or '\\'), while a file's own ESC bytes come after that first column. So a
# file that holds escape sequences is still a diff, and a coloured diff is always caught.
COLOUR = re.compile(rb"^\x1b\[", re.MULTILINE)
COMBINED = re.compile(rb"^(?:diff --(?:cc|combined) |@@@+ -\d)", re.MULTILINE)
MERGE_COMMIT = re.compile(rb"^Merge: [0-9a-f]", re.MULTILINE)  # `git show`'s header of a merge
# git-diff(1) --word-diff: changed words as [-old-]{+new+} in lines with no +/- column
# (plain), or a "~" line ending each line (porcelain). Asked only of a diff that failed to
# parse: a file's own text may hold these brackets.
WORD_DIFF = re.compile(rb"^~$|\[-.*?-\]|\{\+.*?\+\}", re.MULTILINE)
PATCH_START = re.compile(rb"^(?=From [0-9a-f]{40,64} |commit [0-9a-f]{40,64}\b)", re.MULTILINE)
SHOW_NAMES = 3


def refuse_other_forms(data: bytes, shown: str) -> None:
    """UsageError when data is a coloured or a combined diff (see the module's docstring for
    git's documentation of both), with what to run instead."""
    if COLOUR.search(data):
        raise UsageError(
            f"--diff {shown} holds colour codes (ANSI escapes, as `git diff --color=always` "
            "or a pager writes them): save the diff with `git diff --no-color` (or "
            "--color=never)")
    combined = COMBINED.search(data)
    if combined:
        header = "diff --combined" if combined.group().startswith(b"diff --comb") else "diff --cc"
        instead = ("for a merge commit M use `git diff M^1 M` (what it brought to its first "
                   "parent)" if MERGE_COMMIT.search(data) else
                   "during a merge use `git diff HEAD` (your working tree against your branch)")
        raise UsageError(
            f"--diff {shown} is a combined diff ({header}, from a merge): reviewer reads "
            f"two-way diffs; {instead}, or `git diff A...B` for a branch")


def refuse_word_diff(data: bytes, shown: str) -> None:
    """UsageError naming `git diff --word-diff` when data, which failed to parse, holds its
    marks (git-diff(1), --word-diff=plain and porcelain)."""
    if WORD_DIFF.search(data):
        raise UsageError(
            f"--diff {shown} is a word diff (`git diff --word-diff`): reviewer reads line "
            "diffs; save the diff without --word-diff")


def patches(data: bytes) -> list[bytes]:
    """data cut where a mail of `git format-patch` (`From <sha> Mon Sep 17 00:00:00 2001`,
    git-format-patch(1)) or a commit of `git log -p`/`git show` (`commit <sha>`, git-log(1))
    starts; one part when there is no such line (a `git diff`). Neither line can be a line of
    a hunk, which starts with ' ', '+', '-' or '\\'."""
    return [part for part in PATCH_START.split(data) if part.strip()]


def refuse_repeats(series: Sequence[Sequence[Change]], shown: str) -> None:
    """UsageError when one file is changed by more than one patch of series (the changes of
    each part from patches()), or twice within one part (diffs put together with cat)."""
    repeated = _repeated(series)
    if not repeated:
        return
    names = ", ".join(repeated[:SHOW_NAMES])
    more = len(repeated) - SHOW_NAMES
    names += f" and {more} more" if more > 0 else ""
    raise UsageError(
        f"--diff {shown} changes {names} in more than one patch (a patch series, `git log -p`, "
        "or diffs put together), and each patch counts lines from the version the one before "
        "it left: give the range as one diff (`git diff A..B`), or review one patch at a time")


def _repeated(series: Sequence[Sequence[Change]]) -> list[str]:
    first: dict[str, int] = {}  # a path -> the patch that first touched it
    repeated: dict[str, None] = {}
    for number, changes in enumerate(series):
        # Within one diff git names a path once (a rename's source is gone, a type change is
        # joined by gitpatch.py); only a deletion may share its path with a creation (git's
        # broken pairs, diff -B), so a deletion is keyed apart.
        reviewed: set[tuple[bool, str]] = set()
        for change in changes:
            touched = dict.fromkeys((change.old_path, change.new_path))
            repeated.update(dict.fromkeys(
                p for p in touched if first.setdefault(p, number) != number))
            key = (change.deleted_file,
                   change.old_path if change.deleted_file else change.new_path)
            if key in reviewed:
                repeated[key[1]] = None
            reviewed.add(key)
    return list(repeated)

