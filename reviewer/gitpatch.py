"""git's patch format read from bytes: one section per file, with exact names and modes.

unidiff reads hunks well but guesses names from the `diff --git a/X b/Y` line, which is
ambiguous once a name holds " b/" or looks like a header, and it misses the changes git prints
without `---`/`+++` lines (mode-only, binary, pure renames, empty files). Here the header is read
as git apply reads it (git's builtin/apply.c, gitdiff_* and git_header_name):

- `rename from/to`, `copy from/to`, `--- a/X`, `+++ b/X` each hold one whole name, C-quoted
  (`"a/\\303\\274"`) when it has unusual bytes; an unquoted name with a space gets a trailing tab;
- the `diff --git` line is needed only when old and new names are the same (mode-only, binary,
  empty files): then it is `a/X b/X`, so its halves are equal and the length gives X;
- the hunks start at the first `@@` line; hunk lines start with ' ', '+', '-' or '\\', so a
  line starting `diff --git ` always starts a new file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from reviewer.text import decode

SECTION_START = re.compile(rb"^(?=diff --git )", re.MULTILINE)
ESCAPES = {ord("a"): 7, ord("b"): 8, ord("t"): 9, ord("n"): 10, ord("v"): 11, ord("f"): 12,
           ord("r"): 13, ord('"'): 34, ord("\\"): 92}
NULL = b"/dev/null"


@dataclass(frozen=True)
class Section:
    """One file's part of a git patch: names decoded (text.decode), modes, and the hunks."""

    old_path: str
    new_path: str
    new_file: bool
    deleted_file: bool
    renamed: bool
    copied: bool
    old_mode: str | None
    new_mode: str | None
    body: str  # from the first "@@" line, or git's "Binary files ... differ" line, or ""


def sections(patch: bytes) -> list[Section]:
    """Split `git diff` output into per-file sections, in git's order.

    Text before the first `diff --git` line (none in git's output) is ignored. A change of
    type (file, symlink, submodule) comes out as one section, as GitLab sends it.
    """
    found = [section(chunk) for chunk in SECTION_START.split(patch)
             if chunk.startswith(b"diff --git ")]
    joined: list[Section] = []
    for part in found:
        if joined and _is_typechange(joined[-1], part):
            joined[-1] = _typechange(joined[-1], part)
        else:
            joined.append(part)
    return joined


def _is_typechange(gone: Section, new: Section) -> bool:
    # git prints a type change as the deletion and then the creation of one path (diffcore
    # breaks the pair); `git diff --raw` shows it as one "T" entry.
    return gone.deleted_file and new.new_file and gone.old_path == new.new_path


def _typechange(gone: Section, new: Section) -> Section:
    binary = next((b for b in (gone.body, new.body) if b and not b.startswith("@@")), None)
    old_rows, new_rows = _rows(gone.body, "-"), _rows(new.body, "+")
    body = binary or (f"@@ -{_span(old_rows, '-')} +{_span(new_rows, '+')} @@\n"
                      + "".join(old_rows + new_rows) if old_rows or new_rows else "")
    return Section(gone.old_path, new.new_path, new_file=False, deleted_file=False,
                   renamed=False, copied=False, old_mode=gone.old_mode, new_mode=new.new_mode,
                   body=body)


def _rows(body: str, sign: str) -> list[str]:
    return [ln for ln in body.splitlines(keepends=True)[1:] if ln[:1] in (sign, "\\")]


def _span(rows: list[str], sign: str) -> str:
    count = sum(1 for ln in rows if ln.startswith(sign))
    return f"1,{count}" if count else "0,0"


def has_git_headers(patch: bytes) -> bool:
    """True when the patch is git's (it has `diff --git` lines), not a plain unified diff."""
    return SECTION_START.search(patch) is not None


def section(chunk: bytes) -> Section:
    """One file's section, from its `diff --git` line on (its header alone will do: the names
    and modes come from the header, and the body is then empty)."""
    lines = chunk.split(b"\n")
    fields: dict[str, bytes] = {}
    body = b""
    for n, line in enumerate(lines[1:], start=1):
        if line.startswith(b"@@"):
            body = b"\n".join(lines[n:])
            break
        if line.startswith((b"Binary files ", b"GIT binary patch")):
            body = b"\n".join(lines[n:])
            break
        _header_line(line, fields)
    old, new = _names(lines[0][len(b"diff --git "):], fields)
    mode = fields.get("mode")
    return Section(
        old_path=decode(old), new_path=decode(new),
        new_file="new file mode" in fields, deleted_file="deleted file mode" in fields,
        renamed="rename from" in fields, copied="copy from" in fields,
        old_mode=_text(fields.get("old mode") or fields.get("deleted file mode") or mode),
        new_mode=_text(fields.get("new mode") or fields.get("new file mode") or mode),
        body=decode(body),
    )


HEADERS = (b"old mode ", b"new mode ", b"deleted file mode ", b"new file mode ",
           b"rename from ", b"rename to ", b"copy from ", b"copy to ", b"--- ", b"+++ ")


def _header_line(line: bytes, fields: dict[str, bytes]) -> None:
    line = line.rstrip(b"\r")
    for key in HEADERS:
        if line.startswith(key):
            fields[key.decode().strip()] = line[len(key):]
            return
    # "index 1a2b3c4..5d6e7f8 100644": the mode when it did not change.
    match = re.match(rb"index [0-9a-f]+\.\.[0-9a-f]+ ([0-7]{6})$", line)
    if match:
        fields["mode"] = match.group(1)


def _names(git_line: bytes, fields: dict[str, bytes]) -> tuple[bytes, bytes]:
    """(old, new) names: rename/copy lines, else ---/+++ lines, else the diff --git line."""
    old = _one(fields, "rename from", "copy from") or _side(fields.get("---"), b"a/")
    new = _one(fields, "rename to", "copy to") or _side(fields.get("+++"), b"b/")
    if old is None or new is None:
        pair = _git_line_names(git_line)
        old = old if old is not None else (pair[0] if pair else None)
        new = new if new is not None else (pair[1] if pair else None)
    old = old if old is not None else new
    new = new if new is not None else old
    return old or b"", new or b""


def _one(fields: dict[str, bytes], *keys: str) -> bytes | None:
    for key in keys:
        if key in fields:
            return unquote(fields[key])[0]
    return None


def _side(value: bytes | None, prefix: bytes) -> bytes | None:
    if value is None:
        return None
    if not value.startswith(b'"'):
        value = value.removesuffix(b"\t")  # git adds a tab after a name with a space
    name = unquote(value)[0]
    return None if name == NULL else name.removeprefix(prefix)


def _git_line_names(rest: bytes) -> tuple[bytes, bytes] | None:
    """Both names of `diff --git a/X b/Y`, when it can be read without ambiguity."""
    if rest.startswith(b'"'):
        first, tail = unquote(rest)
        second = unquote(tail[1:])[0] if tail.startswith(b' "') else tail[1:]
        return first.removeprefix(b"a/"), second.removeprefix(b"b/")
    if rest.endswith(b'"'):  # only the new name needed quoting
        start = rest.find(b' "')
        if start == -1:  # no quoted name after all: git writes no such line
            return None
        return rest[:start].removeprefix(b"a/"), unquote(rest[start + 1:])[0].removeprefix(b"b/")
    # Unquoted, the names may hold spaces: the line is unambiguous only when they are equal.
    half = (len(rest) - 1) // 2
    first, second = rest[:half], rest[half + 1:]
    if len(rest) % 2 and rest[half:half + 1] == b" " and \
            first.removeprefix(b"a/") == second.removeprefix(b"b/"):
        return first.removeprefix(b"a/"), second.removeprefix(b"b/")
    return None


def unquote(value: bytes) -> tuple[bytes, bytes]:
    """A C-quoted name (git's quote_c_style) as bytes, and what follows the closing quote.

    An unquoted value is returned whole. Escapes: \\a \\b \\t \\n \\v \\f \\r \\" \\\\ and
    three octal digits for any other byte.
    """
    if not value.startswith(b'"'):
        return value, b""
    out = bytearray()
    i = 1
    while i < len(value):
        char = value[i]
        if char == ord('"'):
            return bytes(out), value[i + 1:]
        if char == ord("\\") and i + 1 < len(value):
            octal = value[i + 1:i + 4]
            if re.fullmatch(rb"[0-3][0-7]{2}", octal):
                out.append(int(octal, 8))
                i += 4
                continue
            out.append(ESCAPES.get(value[i + 1], value[i + 1]))
            i += 2
            continue
        out.append(char)
        i += 1
    return bytes(out), b""  # no closing quote: take it all rather than lose the name


def _text(mode: bytes | None) -> str | None:
    return mode.decode("ascii") if mode else None
