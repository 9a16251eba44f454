"""Pure: untrusted text (the model's, the merge request's) made inert for a GitLab note.

GitLab runs a quick action (``/approve``, ``/merge``) written at the start of a line of a note
created through the API, with the token's rights, and notifies whoever is @mentioned. Raw HTML
in a note renders, and an unclosed fence swallows the rest of the note. So every string that
reaches a note passes through ``inert`` (prose), ``cell`` (a table cell) or ``fence`` (code).
HTML is escaped only outside code: GitLab shows code spans and code blocks literally, so
``List<Order>`` in backticks must stay as written (``&lt;`` there would show as ``&lt;``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

ZWSP = "\u200b"
# GitLab runs a quick action written at the start of a line; it pings anyone @mentioned.
QUICK_ACTION = re.compile(r"^(\s*)/", re.MULTILINE)
CODE_QUICK_ACTION = re.compile(r"^/(?=[a-z_]+\b)", re.MULTILINE | re.IGNORECASE)  # as GitLab
MENTION = re.compile(r"(?<!\w)@(?=[\w.-])")
CODE_SPAN = re.compile(r"(`+)[^`\n]+?\1")
TAG = re.compile(r"<(?=[A-Za-z/!?])")
# A fence opened in model prose would swallow the rest of the note, our JSON block included.
PROSE_FENCE = re.compile(r"^(\s{0,3})(?=```|~~~)", re.MULTILINE)
FENCE_OPEN = re.compile(r"^ {0,3}(`{3,}|~{3,})([^\n`]*)\n", re.MULTILINE)
# Info strings GitLab gives powers to: a committable suggestion, diagrams, maths.
ACTIVE_LANGS = frozenset({"suggestion", "mermaid", "plantuml", "kroki", "math", "graphviz"})
SAFE_LANG = re.compile(r"^[A-Za-z0-9_+#.-]{1,30}$")


def inert(text: str) -> str:
    """Untrusted text made safe for a GitLab note: no quick actions, mentions or raw HTML.

    A closed fenced code block stays a code block (re-fenced so nothing in it can close it
    early, with quick-action lines broken); code spans keep ``<`` and ``@`` as written.
    """
    out: list[str] = []
    for is_code, part, lang in _blocks(text):
        out.append(fence(part, lang) if is_code else _prose(part))
    return "".join(out)


def _prose(text: str) -> str:
    text = QUICK_ACTION.sub(rf"\1{ZWSP}/", text)
    text = _outside_code_spans(text, lambda part: TAG.sub(
        "&lt;", MENTION.sub(f"@{ZWSP}", part)))
    return PROSE_FENCE.sub(rf"\1{ZWSP}", text)


def _blocks(text: str) -> Iterator[tuple[bool, str, str]]:
    """(is_code, text, language) runs: closed fenced blocks apart from the prose around them;
    an unclosed fence is prose (and gets broken there)."""
    pos = 0
    while (opened := FENCE_OPEN.search(text, pos)) is not None:
        marker = opened.group(1)
        closer = re.compile(rf"^ {{0,3}}{re.escape(marker[0])}{{{len(marker)},}}[ \t]*$",
                            re.MULTILINE)
        closed = closer.search(text, opened.end())
        if closed is None:
            break
        yield False, text[pos:opened.start()], ""
        body = text[opened.end():closed.start()].removesuffix("\n")
        yield True, body, _lang(opened.group(2))
        pos = closed.end()
    yield False, text[pos:], ""


def _lang(info: str) -> str:
    word = (info.strip().split() or [""])[0]
    if not SAFE_LANG.match(word) or word.split(":")[0].lower() in ACTIVE_LANGS:
        return ""
    return word


def _outside_code_spans(text: str, change: Callable[[str], str]) -> str:
    # GitLab makes no mention inside `code`, so `@property` there stays as written; an unclosed
    # backtick is no code span and protects nothing.
    out, last = [], 0
    for span in CODE_SPAN.finditer(text):
        out += [change(text[last:span.start()]), span.group(0)]
        last = span.end()
    return "".join([*out, change(text[last:])])


def cell(text: str) -> str:
    """Inert text for one Markdown table cell."""
    return inert(" ".join(text.split())).replace("|", "\\|")


def fence(body: str, lang: str = "") -> str:
    """A code block whose fence no backtick run inside the body can close."""
    # GitLab skips code blocks when it looks for quick actions, but only simply fenced ones.
    body = CODE_QUICK_ACTION.sub(f"{ZWSP}/", body)
    longest = max((len(m) for m in re.findall(r"`+", body)), default=0)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}{lang}\n{body}\n{ticks}"


def clip(text: str, limit: int, note: str = "cut here; the full text is in review.json") -> str:
    """At most limit characters of text, with a visible note where it was cut."""
    if len(text) <= limit:
        return text
    return text[:limit].rstrip() + f" … ({note})"


def code(text: str, in_table: bool = False) -> str:
    """Text as one inline code span that nothing in it can close (GitLab shows it literally:
    no HTML, no mention, no quick action); a table cell's pipes are escaped, as GFM wants."""
    text = " ".join(text.split())
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    ticks = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    span = f"{ticks}{pad}{text}{pad}{ticks}"
    return span.replace("|", "\\|") if in_table else span
