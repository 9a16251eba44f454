"""What GitLab would do with a note's text: the quick actions it would run and the people it would
notify. The GitLab stand-in records both for every note created or edited; tests assert none.

**Quick actions** follow GitLab's extractor (lib/gitlab/quick_actions/extractor.rb,
``commands_regex``): carriage returns are deleted, then one regular expression scans the text,
skipping code blocks (a line starting with three backticks up to the next line of exactly
three); any other line that starts at column 0 with ``/name`` followed by a space and arguments,
or by the end of the line, is a command. GitLab matches only its own command names; here any
name counts, so a new command cannot slip by. Recent GitLab also skips "inline code on separate
rows", HTML blocks and ``>>>`` quotes, patterns that differ between versions (and that skip
nearly every line above one ending in a backtick, as our notes' last line does): they are left
out, so the recorder errs on the side of recording.

**Mentions** follow GitLab's user reference pattern (app/models/user.rb ``reference_pattern``:
``(?<!\\w)@`` then a namespace path; Ruby's ``\\w`` is ASCII only), found where GitLab's reference
filters look: the rendered note's text outside code spans and code blocks, entities decoded. The
note is parsed with markdown-it (CommonMark with GFM tables), as GitLab's Markdown parser reads
it; text in raw HTML counts too, attributes included, which errs on the side of a ping.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from markdown_it import MarkdownIt
from markdown_it.token import Token

# GitLab's regular expression (flags m, i, x: in Ruby, m lets "." match a newline) with its
# code-block alternative only, and any command name in place of the union of GitLab's names.
GITLAB_EXTRACTOR = re.compile(r"""
      (?P<code> ^```.+?\n```$ )
    | (?: ^/(?P<cmd>[a-z_]+) (?: [ ](?P<arg>[^\n]*) )? (?: \s*\n | $ ) )
""", re.MULTILINE | re.DOTALL | re.IGNORECASE | re.VERBOSE)
# User.reference_pattern with Gitlab::PathRegex::FULL_NAMESPACE_FORMAT_REGEX (its lookahead
# against ".git"/".atom" endings left out: that only narrows it).
_NAME = r"(?:[A-Za-z0-9_.][A-Za-z0-9_.-]*[A-Za-z0-9_-]|[A-Za-z0-9_])"
GITLAB_MENTION = re.compile(rf"(?<![A-Za-z0-9_])@(?P<name>(?:{_NAME}/)*{_NAME})")
CODE_TOKENS = frozenset({"code_inline", "code_block", "fence"})
_MARKDOWN = MarkdownIt("commonmark").enable("table")


def quick_actions(body: str) -> list[tuple[str, str]]:
    """(command, argument) for each quick action GitLab would run on a note with this body."""
    if not column_zero_commands(body):
        return []  # nothing can match: every command starts a line so (and this is quick)
    text = body.replace("\r", "")
    return [(m.group("cmd").lower(), (m.group("arg") or "").strip())
            for m in GITLAB_EXTRACTOR.finditer(text) if m.group("cmd")]


def column_zero_commands(body: str) -> list[str]:
    """Every line that starts like a quick action once carriage returns are gone, wherever it is
    (code blocks included): the stricter rule the renderer keeps, whatever GitLab's version."""
    text = body.replace("\r", "")
    return re.findall(r"^/[a-z_]+(?=\s|$)", text, re.MULTILINE | re.IGNORECASE)


def mentions(body: str) -> list[str]:
    """The names GitLab would notify for a note with this body (@all and @here included)."""
    return [m.group("name") for text in _visible_text(_MARKDOWN.parse(body))
            for m in GITLAB_MENTION.finditer(text)]


def _visible_text(tokens: Iterable[Token]) -> Iterator[str]:
    for token in tokens:
        if token.type in CODE_TOKENS:
            continue
        if token.children:
            yield from _visible_text(token.children)
        elif token.type == "text":
            yield token.content  # markdown-it has decoded entities and escapes already
        elif token.type in ("html_inline", "html_block"):
            yield html.unescape(token.content)


def rendered(body: str) -> str:
    """The note as HTML, as a CommonMark reader with GFM tables makes it."""
    return str(_MARKDOWN.render(body))


def raw_html(body: str) -> list[str]:
    """The raw HTML a note renders (GitLab sanitises it, but none of it may come from a model)."""
    found: list[str] = []
    for token in _walk(_MARKDOWN.parse(body)):
        if token.type in ("html_inline", "html_block"):
            found.append(token.content.strip())
    return found


def table_rows(body: str) -> list[int]:
    """The number of cells each row of each table is written with (GFM drops the cells past
    the header's count, so the rendered table would hide a row that a pipe broke)."""
    lines = body.split("\n")
    rows: list[int] = []
    for token in _MARKDOWN.parse(body):
        if token.type != "table_open" or token.map is None:
            continue
        for line in lines[token.map[0]:token.map[1]]:
            inner = line.strip().removeprefix("|").removesuffix("|")
            if inner and not set(inner) <= set("-:| "):  # not the delimiter row
                rows.append(len(re.findall(r"(?<!\\)\|", inner)) + 1)
    return rows


def code_blocks(body: str) -> list[tuple[str, str]]:
    """(info string, content) of each fenced code block, as a Markdown reader finds them."""
    return [(token.info, token.content) for token in _MARKDOWN.parse(body)
            if token.type == "fence"]


def _walk(tokens: Iterable[Token]) -> Iterator[Token]:
    for token in tokens:
        yield token
        if token.children:
            yield from _walk(token.children)


@dataclass(frozen=True)
class Effect:
    """One thing GitLab would do because of a note: run a command, or notify someone."""

    note_id: int
    kind: str  # "action" | "mention"
    what: str  # "/close", "/label ~bug", "@all"


@dataclass
class Recorder:
    """Collects what GitLab would do for each note body written (created or edited)."""

    effects: list[Effect] = field(default_factory=list)
    notes: int = 0  # bodies seen, so a test can tell "nothing recorded" from "nothing posted"

    def note(self, note_id: int, body: str) -> None:
        self.notes += 1
        for name, arg in quick_actions(body):
            self.effects.append(Effect(note_id, "action", f"/{name} {arg}".rstrip()))
        for name in mentions(body):
            self.effects.append(Effect(note_id, "mention", f"@{name}"))

    @property
    def actions(self) -> list[Effect]:
        return [e for e in self.effects if e.kind == "action"]

    @property
    def mentions(self) -> list[Effect]:
        return [e for e in self.effects if e.kind == "mention"]
