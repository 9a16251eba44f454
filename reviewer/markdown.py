r"""Pure: untrusted text (the model's, the merge request's) made inert for a GitLab note.

GitLab runs a quick action (``/approve``, ``/merge``) written at the start of a line of a note
created through the API, with the token's rights, and notifies whoever is @mentioned. Raw HTML
in a note renders, and an unclosed fence swallows the rest of the note. So every string that
reaches a note passes through ``inert`` (prose), ``cell`` (a table cell) or ``fence`` (code).
HTML is escaped only outside code: GitLab shows code spans and code blocks literally, so
``List<Order>`` in backticks must stay as written (``&lt;`` there would show as ``&lt;``).

What counts as code is decided as CommonMark decides it, or more strictly: a backtick run that
closes no code span here is written as ``&#96;``, so it cannot pair with a run further on (in
this text or in the next field of the note) and turn the text between into prose or code that
was not meant. Links and images cannot be made (``](`` is broken), since a link destination
swallows backticks; entities are shown as written (``&#64;all`` would be a mention); and line
ends are ``\n`` only, because GitLab deletes ``\r`` before it looks for quick actions.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

ZWSP = "\u200b"
# GitLab runs a quick action written at the start of a line; it pings anyone @mentioned.
QUICK_ACTION = re.compile(r"^(\s*)/", re.MULTILINE)
CODE_QUICK_ACTION = re.compile(r"^/(?=[a-z_]+\b)", re.MULTILINE | re.IGNORECASE)  # as GitLab
# GitLab's user reference is (?<!\w)@name with Ruby's ASCII \w, matched in the rendered text:
# "é@all" pings, "dev@x.org" does not, "_@all_" does (the "_" is emphasis, not text) and so
# does "@\_" (an escaped "_" is one).
MENTION = re.compile(r"(?<![A-Za-z0-9])@(?=[\w.\\-])")
# A code span as CommonMark reads one: a whole backtick run that no backslash escapes, closed by
# the next whole run of the same length (on the same line here, which is stricter).
CODE_SPAN = re.compile(r"(?<![`\\])(`+)(?!`)[^\n]*?(?<!`)\1(?!`)")
TAG = re.compile(r"<(?=[A-Za-z/!?])")
ENTITY = re.compile(r"&(?=#[0-9]{1,7};|#[xX][0-9a-fA-F]{1,6};|[A-Za-z][A-Za-z0-9]{1,31};)")
LINK = re.compile(r"\](?=\()")  # "[text](" starts a link or, after "!", an image
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
    for is_code, part, lang in _blocks(newlines(text)):
        out.append(fence(part, lang) if is_code else _prose(part))
    return "".join(out)


def newlines(text: str) -> str:
    r"""text with "\n" as its only line end, and NUL (refused by GitLab's database) as U+FFFD.

    Markdown ends a line at a lone "\r" as well, but GitLab deletes every "\r" before it looks
    for quick actions, so "x\n/\rclose" would read as "/close" there and as no command here.
    """
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "\ufffd")


def _prose(text: str) -> str:
    text = QUICK_ACTION.sub(rf"\1{ZWSP}/", text)
    text = _outside_code_spans(text, _inline)
    return PROSE_FENCE.sub(rf"\1{ZWSP}", text)


def _inline(text: str) -> str:
    """Prose outside code spans: no entity, tag, mention, link or backtick that still acts."""
    text = TAG.sub("&lt;", ENTITY.sub("&amp;", text))  # entities first: "&lt;" is ours
    text = LINK.sub(f"]{ZWSP}", MENTION.sub(f"@{ZWSP}", text))
    return text.replace("`", "&#96;")  # a run that closes nothing here must not pair later


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
    body = CODE_QUICK_ACTION.sub(f"{ZWSP}/", newlines(body))
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
    text = " ".join(newlines(text).split())
    if not text:
        # "``" would be no span but a backtick run, free to pair with one further on.
        return "` `"
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    ticks = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    span = f"{ticks}{pad}{text}{pad}{ticks}"
    return span.replace("|", "\\|") if in_table else span
