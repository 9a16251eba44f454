"""Pure: a review as GitLab Markdown and as a terminal view; model text is made inert."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from reviewer import identity
from reviewer.coverage import by_reason
from reviewer.markdown import CODE_QUICK_ACTION, cell, clip, code, fence, inert, newlines
from reviewer.model import NotReviewed, PlacedFinding, Review, severity_rank
from reviewer.text import printable

MARKER = "<!-- reviewer:summary -->"
FINDING_ID = identity.MARKER_RE  # an inline thread's marker, of either version
VERDICTS = {"approve": "✅ approve", "comment": "💬 comment",
            "request_changes": "⛔ request changes"}
# GitLab refuses a note over 1,000,000 characters ("Note is too long"): every part of a note
# has a budget, so the whole stays far below it whatever the model or the change holds.
MAX_JSON_CHARS = 200_000
MAX_TEXT = 20_000  # one model text: a summary, a message, a suggestion
MAX_TITLE = 300
BUDGETS = {"table": 150_000, "details": 150_000, "lists": 40_000}


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


def _table(findings: Sequence[PlacedFinding], report: InlineReport | None,
           left_out: list[str]) -> list[str]:
    if not findings:
        return ["No findings."]
    rows = []
    for f in findings:
        where = code(location(f), in_table=True) + ("" if f.placed else " (not in diff)")
        thread = " 💬" if report and f.fingerprint in report.inline else ""
        rows.append(f"| {f.severity} | {where}{thread} | {cell(f.rule or '-')} | "
                    f"{cell(clip(f.title, MAX_TITLE))} |")
    kept, cut = _bounded(rows, BUDGETS["table"])
    if cut:
        left_out.append(f"{cut} finding(s) from the table")
    return ["| Severity | Location | Rule | Finding |", "|---|---|---|---|", *kept,
            *([f"| … | {cut} more finding(s) not shown | | |"] if cut else [])]


def _bounded(items: Sequence[str], budget: int) -> tuple[list[str], int]:
    """The leading items that fit budget characters, and how many were left out."""
    kept: list[str] = []
    used = 0
    for item in items:
        if used + len(item) + 1 > budget:
            break
        kept.append(item)
        used += len(item) + 1
    return kept, len(items) - len(kept)


def _inline_line(findings: Sequence[PlacedFinding], report: InlineReport | None) -> list[str]:
    if report is None or not findings:
        return []
    inline = sum(1 for f in findings if f.fingerprint in report.inline)
    text = (f"{inline} finding(s) inline (💬), {len(findings) - inline} in this summary; "
            f"since the last run: {report.new} new, {report.resolved} resolved")
    if report.rejected:
        text += f"; GitLab refused the position of {report.rejected}, shown here instead"
    return [f"_{text}._", ""]


def finding_note(finding: PlacedFinding, suggestion: tuple[int, str] | None,
                 key: identity.Key) -> str:
    """The body of an inline thread: its hidden marker (what later runs match it by: the
    finding's key), the finding, and its fix as a suggestion where it can be."""
    rule = f" · {cell(finding.rule)}" if finding.rule else ""
    lines = [identity.marker(key),
             f"**{finding.severity}**{rule} · **{cell(clip(finding.title, MAX_TITLE))}**", "",
             inert(clip(finding.message, MAX_TEXT))]
    # GitLab deletes "\r" before it looks for quick actions: line ends as it will read them.
    offered = (suggestion[0], newlines(suggestion[1])) if suggestion else None
    if offered and _committable(offered[1]):
        above, text = offered  # counted from the note's line, the range's last
        lines += ["", f"```suggestion:-{above}+0\n{text}\n```"]
    elif finding.suggestion:
        lines += ["", "Suggested change:", "", _code_block(finding.suggestion)]
    return "\n".join(lines)


def _code_block(text: str) -> str:
    if len(text) > MAX_TEXT:
        return "_(a suggestion too long to show here; it is in review.json)_"
    return fence(text)


def _committable(text: str) -> bool:
    # Only a plain ``` block is skipped by GitLab's quick-action scan, so code that contains a
    # fence of its own, or a line that reads as a quick action, is shown but not offered; nor
    # is code too long for a note.
    return "```" not in text and not CODE_QUICK_ACTION.search(text) and len(text) <= MAX_TEXT


def _details(findings: Sequence[PlacedFinding], left_out: list[str]) -> list[str]:
    out: list[str] = []
    for f in findings:
        part = [f"**{cell(clip(f.title, MAX_TITLE))}** ({code(location(f))}, {f.severity})", "",
                inert(clip(f.message, MAX_TEXT))]
        if f.suggestion:
            part += ["", "Suggested change:", "", _code_block(f.suggestion)]
        out.append("\n".join([*part, ""]))
    kept, cut = _bounded(out, BUDGETS["details"])
    if cut:
        left_out.append(f"the details of {cut} finding(s)")
    return kept + ([f"_… and {cut} more not shown here._", ""] if cut else [])


def _listing(title: str, items: Sequence[str], left_out: list[str]) -> list[str]:
    if not items:
        return []
    kept, cut = _bounded(items, BUDGETS["lists"])
    if cut:
        left_out.append(f"{cut} of the {title.lower()} list")
    more = [f"… and {cut} more"] if cut else []
    return [f"**{title}:** " + ", ".join([*kept, *more]), ""]


def _by_reason(missing: Sequence[NotReviewed]) -> list[str]:
    return [f"{', '.join(code(p) for p in paths)} ({cell(reason)})"
            for reason, paths in by_reason(missing).items()]


def _heading(review: Review) -> str:
    score = f"{review.score}/100" if review.score is not None else "no score"
    incomplete = " · ⚠️ incomplete" if not review.coverage.complete else ""
    return f"## 🤖 Review: {score} · {VERDICTS[review.verdict]}{incomplete}"


def summary_note(review: Review, report: InlineReport | None = None,
                 artifact: str = "review.json", state: str = "") -> str:
    """The body of the one summary discussion on the merge request (state: the hidden line
    the next run builds on, reviewer/state.py; it ends the note).

    Bounded far below GitLab's 1,000,000-character note limit: each part has a budget, the
    most severe findings come first, and what does not fit is counted and left to review.json
    (artifact: a link to it, or its name).
    """
    ordered = sorted(review.findings, key=lambda f: -severity_rank(f.severity))
    ours = [f for f in ordered if f.in_change]
    elsewhere = [f for f in ordered if not f.in_change]
    here = [f for f in ours if not report or f.fingerprint not in report.inline]
    left_out: list[str] = []
    lines = [inert(clip(review.summary, MAX_TEXT)), "", *_table(ours, report, left_out), "",
             *_inline_line(ours, report)]
    if here:
        lines += ["<details><summary>Findings in detail</summary>", "",
                  *_details(here, left_out), "</details>", ""]
    lines += _listing("About files not in this change", [
        f"{code(location(f))} {f.severity}: {cell(clip(f.title, MAX_TITLE))}" for f in elsewhere],
        left_out)
    lines += _rerun(review, left_out)
    lines += _listing("Not reviewed", _by_reason(review.coverage.not_reviewed), left_out)
    lines += _listing("Skipped by policy", [f"{code(s.path)} ({cell(s.reason)})"
                                            for s in review.skipped_files], left_out)
    lines += [_footer(review), "", "<details><summary>Review JSON</summary>", "",
              _json_block(review, artifact), "", "</details>"]
    notice = [f"_Too long for one note: {'; '.join(left_out)} left out here. The whole review "
              f"is in {artifact}._", ""] if left_out else []
    return "\n".join([MARKER, _heading(review), "", *notice, *lines,
                      *(["", state] if state else [])])


def _rerun(review: Review, left_out: list[str]) -> list[str]:
    """With --incremental: why a full review, the files this run reviewed and those whose
    findings were carried over, with counts."""
    rerun = review.rerun
    if rerun is None:
        return []
    lines = [f"_{inert(clip(rerun.reason, MAX_TITLE))}._", ""] if rerun.reason else []
    since = f" since {code(rerun.since_sha[:12])}" if rerun.since_sha else ""
    lines += _listing(f"Reviewed in this run{since} ({len(review.files_reviewed)} file(s))",
                      [code(p) for p in review.files_reviewed], left_out) or (
        [f"**Reviewed in this run{since}:** no file changed that needs review", ""]
        if rerun.mode == "incremental" else [])
    carried = rerun.files_carried_over
    lines += _listing(f"Carried over, unchanged{since} ({len(carried)} file(s), "
                      f"{rerun.findings_carried_over} finding(s))",
                      [code(p) for p in carried], left_out)
    return lines


def _footer(review: Review) -> str:
    head = review.merge_request.head_sha[:12] if review.merge_request else "local"
    spec = review.spec
    commit = f" @ {code(spec.commit[:12])}" if spec.commit else ""
    # Settings, not the model, name these; still bounded and inert, like any text in a note.
    model, host = clip(review.model.name, MAX_TITLE), clip(review.model.host, MAX_TITLE)
    return (f"<sub>Model {code(model)} on {cell(host)} · spec {cell(clip(spec.source, MAX_TITLE))}"
            f"{commit} ({len(spec.rules)} rules) · reviewed at {code(head)} · "
            f"{review.usage.requests} request(s), {review.usage.prompt_tokens}+"
            f"{review.usage.completion_tokens} tokens</sub>")


def _json_block(review: Review, artifact: str) -> str:
    text = review.model_dump_json(indent=2)
    if len(text) > MAX_JSON_CHARS:
        return (f"The review JSON is too large for a note ({len(text):,} characters); see "
                f"{artifact}, the job's artifact.")
    return fence(text, "json")


def terminal(review: Review) -> RenderableType:
    """The review for a terminal (--dry-run, local mode)."""
    colour = {"approve": "green", "comment": "yellow", "request_changes": "red"}[review.verdict]
    score = f"{review.score}/100" if review.score is not None else "no score"
    title = Text.assemble(("Score ", "bold"), (score, f"bold {colour}"),
                          ("  ·  ", "dim"), (VERDICTS[review.verdict], colour),
                          *([("  ·  incomplete", "bold red")] if not review.coverage.complete
                            else []))
    ours = [f for f in review.findings if f.in_change]
    parts: list[RenderableType] = [Text(review.summary), _terminal_table(ours) if ours
                                   else Text("No findings.", style="green")]
    elsewhere = [f"{location(f)} {f.severity}: {f.title}" for f in review.findings
                 if not f.in_change]
    # Names come from the diff: one holding an ESC or a CR would restyle or rewind the terminal.
    listings = [("About files not in this change", elsewhere, "dim"),
                ("Not reviewed", [printable(f"{n.path} ({n.reason})")
                                  for n in review.coverage.not_reviewed], "red"),
                ("Skipped by policy", [printable(f"{s.path} ({s.reason})")
                                       for s in review.skipped_files], "dim")]
    parts += [Text(f"{name}: " + ", ".join(items), style=style)
              for name, items, style in listings if items]
    parts.append(Text(f"model {review.model.name} on {review.model.host} · spec "
                      f"{review.spec.source} ({len(review.spec.rules)} rules) · "
                      f"{review.usage.requests} request(s)", style="dim"))
    return Panel(Group(*parts), title=title, title_align="left")


def _terminal_table(findings: Sequence[PlacedFinding]) -> Table:
    table = Table(show_lines=False, expand=True)
    for name in ("severity", "location", "rule", "finding"):
        table.add_column(name)
    for f in findings:
        where = location(f) + ("" if f.placed else " (not in diff)")
        table.add_row(f.severity, where, f.rule or "-", Text(f"{f.title}\n{f.message}"))
    return table
