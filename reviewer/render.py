"""Pure: a review as GitLab Markdown and as a terminal view; model text is made inert."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from reviewer.model import PlacedFinding, Review

MARKER = "<!-- reviewer:summary -->"
FINDING_MARKER = "<!-- reviewer:finding {} -->"
FINDING_ID = re.compile(r"<!-- reviewer:finding ([0-9a-f]+) -->")
MAX_JSON_CHARS = 200_000  # GitLab notes hold 1,000,000 characters; stay far below
VERDICTS = {"approve": "✅ approve", "comment": "💬 comment",
            "request_changes": "⛔ request changes"}
ZWSP = "\u200b"
# GitLab runs a quick action written at the start of a line; it pings anyone @mentioned.
QUICK_ACTION = re.compile(r"^(\s*)/", re.MULTILINE)
CODE_QUICK_ACTION = re.compile(r"^/(?=[a-z_]+\b)", re.MULTILINE | re.IGNORECASE)  # as GitLab
MENTION = re.compile(r"(?<!\w)@(?=[\w.-])")
CODE_SPAN = re.compile(r"(`+)[^`\n]+?\1")
TAG = re.compile(r"<(?=[A-Za-z/!?])")
# A fence opened in model prose would swallow the rest of the note, our JSON block included.
PROSE_FENCE = re.compile(r"^(\s{0,3})(?=```|~~~)", re.MULTILINE)


def inert(text: str) -> str:
    """Untrusted text made safe for a GitLab note: no quick actions, mentions or raw HTML."""
    text = QUICK_ACTION.sub(rf"\1{ZWSP}/", text)
    text = _outside_code_spans(text, lambda part: MENTION.sub(f"@{ZWSP}", part))
    text = PROSE_FENCE.sub(rf"\1{ZWSP}", text)
    return TAG.sub("&lt;", text)


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


def location(finding: PlacedFinding) -> str:
    side = ":old" if finding.side == "old" else ""
    end = f"-{finding.end_line}" if finding.end_line and finding.end_line != finding.line else ""
    return f"{finding.path}:{finding.line}{end}{side}"


@dataclass(frozen=True)
class InlineReport:
    """How the findings were posted, for the summary: which went inline and what changed."""

    inline: frozenset[str]  # fingerprints in a thread on the diff
    new: int = 0
    resolved: int = 0
    rejected: int = 0  # GitLab refused the position: shown in the summary instead


def _table(findings: list[PlacedFinding], report: InlineReport | None) -> list[str]:
    if not findings:
        return ["No findings."]
    rows = ["| Severity | Location | Rule | Finding |", "|---|---|---|---|"]
    for f in findings:
        where = cell(location(f)) + ("" if f.placed else " (not in diff)")
        thread = " 💬" if report and f.fingerprint in report.inline else ""
        rows.append(f"| {f.severity} | `{where}`{thread} | {cell(f.rule or '-')} | "
                    f"{cell(f.title)} |")
    return rows


def _inline_line(findings: list[PlacedFinding], report: InlineReport | None) -> list[str]:
    if report is None or not findings:
        return []
    inline = sum(1 for f in findings if f.fingerprint in report.inline)
    text = (f"{inline} finding(s) inline (💬), {len(findings) - inline} in this summary; "
            f"since the last run: {report.new} new, {report.resolved} resolved")
    if report.rejected:
        text += f"; GitLab refused the position of {report.rejected}, shown here instead"
    return [f"_{text}._", ""]


def finding_note(finding: PlacedFinding, suggestion: tuple[int, str] | None) -> str:
    """The body of an inline thread: the finding, and its fix as a suggestion where it can be."""
    rule = f" · {cell(finding.rule)}" if finding.rule else ""
    lines = [FINDING_MARKER.format(finding.fingerprint),
             f"**{finding.severity}**{rule} · **{cell(finding.title)}**", "",
             inert(finding.message)]
    if suggestion and _committable(suggestion[1]):
        above, text = suggestion  # counted from the note's line, the range's last
        lines += ["", f"```suggestion:-{above}+0\n{text}\n```"]
    elif finding.suggestion:
        lines += ["", "Suggested change:", "", fence(finding.suggestion)]
    return "\n".join(lines)


def _committable(text: str) -> bool:
    # Only a plain ``` block is skipped by GitLab's quick-action scan, so code that contains a
    # fence of its own, or a line that reads as a quick action, is shown but not offered.
    return "```" not in text and not CODE_QUICK_ACTION.search(text)


def _details(findings: list[PlacedFinding]) -> list[str]:
    out: list[str] = []
    for f in findings:
        out += [f"**{cell(f.title)}** (`{cell(location(f))}`, {f.severity})", "", inert(f.message)]
        if f.suggestion:
            out += ["", "Suggested change:", "", fence(f.suggestion)]
        out.append("")
    return out


def summary_note(review: Review, report: InlineReport | None = None) -> str:
    """The body of the one summary discussion on the merge request."""
    head = review.merge_request.head_sha[:12] if review.merge_request else "local"
    lines = [MARKER, f"## 🤖 Review: {review.score}/100 · {VERDICTS[review.verdict]}", "",
             inert(review.summary), "", *_table(review.findings, report), "",
             *_inline_line(review.findings, report)]
    here = [f for f in review.findings if not report or f.fingerprint not in report.inline]
    if here:
        lines += ["<details><summary>Findings in detail</summary>", "", *_details(here),
                  "</details>", ""]
    if review.skipped_files:
        lines += ["**Not reviewed:** " + ", ".join(
            f"`{cell(s.path)}` ({cell(s.reason)})" for s in review.skipped_files), ""]
    spec = review.spec
    commit = f" @ `{spec.commit[:12]}`" if spec.commit else ""
    lines += [f"<sub>Model `{cell(review.model.name)}` on {cell(review.model.host)} · spec "
              f"{cell(spec.source)}{commit} ({len(spec.rules)} rules) · reviewed at `{head}` · "
              f"{review.usage.requests} request(s), {review.usage.prompt_tokens}+"
              f"{review.usage.completion_tokens} tokens</sub>", ""]
    lines += ["<details><summary>Review JSON</summary>", "", _json_block(review), "", "</details>"]
    return "\n".join(lines)


def _json_block(review: Review) -> str:
    text = review.model_dump_json(indent=2)
    if len(text) > MAX_JSON_CHARS:
        return "The review JSON is too large for a note; see the job's review.json artifact."
    return fence(text, "json")


def terminal(review: Review) -> RenderableType:
    """The review for a terminal (--dry-run, local mode)."""
    colour = {"approve": "green", "comment": "yellow", "request_changes": "red"}[review.verdict]
    title = Text.assemble(("Score ", "bold"), (f"{review.score}/100", f"bold {colour}"),
                          ("  ·  ", "dim"), (VERDICTS[review.verdict], colour))
    table = Table(show_lines=False, expand=True)
    for name in ("severity", "location", "rule", "finding"):
        table.add_column(name)
    for f in review.findings:
        where = location(f) + ("" if f.placed else " (not in diff)")
        table.add_row(f.severity, where, f.rule or "-", Text(f"{f.title}\n{f.message}"))
    parts: list[RenderableType] = [Text(review.summary), table if review.findings
                                   else Text("No findings.", style="green")]
    if review.skipped_files:
        skipped = ", ".join(f"{s.path} ({s.reason})" for s in review.skipped_files)
        parts.append(Text(f"Not reviewed: {skipped}", style="dim"))
    parts.append(Text(f"model {review.model.name} on {review.model.host} · spec "
                      f"{review.spec.source} ({len(review.spec.rules)} rules) · "
                      f"{review.usage.requests} request(s)", style="dim"))
    return Panel(Group(*parts), title=title, title_align="left")
