"""The summary note as GitLab Markdown: inert model text, fences that hold, JSON that parses."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest

from reviewer.model import (
    MergeRequestInfo,
    ModelInfo,
    PlacedFinding,
    Review,
    SkippedFile,
    SpecInfo,
    Usage,
)
from reviewer.render import MARKER, MAX_JSON_CHARS, summary_note

# GitLab runs a quick action written at the very start of a line, its name in any case
# (lib/gitlab/quick_actions/extractor.rb: ^\/ and Regexp::IGNORECASE).
GITLAB_QUICK_ACTION = re.compile(r"^/[a-z_]+", re.MULTILINE | re.IGNORECASE)


def placed_finding(**fields: Any) -> PlacedFinding:
    data: dict[str, Any] = {
        "path": "src/app.py", "line": 12, "side": "new", "end_line": None, "severity": "major",
        "rule": "SEC-001", "title": "SQL built by string formatting",
        "message": "Use a bound parameter.", "suggestion": None, "placed": True,
        "fingerprint": "0123456789abcdef"}
    return PlacedFinding(**(data | fields))


def make_review(**fields: Any) -> Review:
    data: dict[str, Any] = {
        "generated_at": datetime(2024, 5, 1, 12, 0, tzinfo=UTC),
        "tool_version": "0.1.0",
        "merge_request": MergeRequestInfo(
            project="group/app", iid=7, web_url="https://gitlab.example/group/app/-/merge_requests/7",
            title="Add login", source_branch="login", target_branch="main", base_sha="b" * 40,
            start_sha="s" * 40, head_sha="0123456789abcdef0123456789abcdef01234567"),
        "model": ModelInfo(name="qwen2.5-coder:7b", host="models.example:11434",
                           structured_output="json_schema"),
        "spec": SpecInfo(source="https://gitlab.example/group/spec.git", ref="main",
                         commit="fedcba9876543210fedcba9876543210fedcba98",
                         rules=["SEC-001", "COR-001", "READ-001"]),
        "score": 72,
        "verdict": "comment",
        "summary": "Adds a login form; one query is built unsafely.",
        "findings": [placed_finding(),
                     placed_finding(path="src/ghost.py", line=3, severity="minor", rule=None,
                                    title="Invented location", placed=False)],
        "files_reviewed": ["src/app.py"],
        "skipped_files": [SkippedFile(path="package-lock.json", reason="lock file"),
                          SkippedFile(path="assets/logo.png", reason="binary file")],
        "usage": Usage(prompt_tokens=1200, completion_tokens=300, requests=2),
        "timings": {"model_s": 1.5, "total_s": 2.0},
    }
    return Review(**(data | fields))


def json_block(note: str) -> str:
    """The body of the note's ```json block, found by its fence as a Markdown reader would."""
    lines = note.splitlines()
    start = next(i for i, ln in enumerate(lines) if re.fullmatch(r"`{3,}json", ln))
    ticks = lines[start][:-len("json")]
    end = next(i for i in range(start + 1, len(lines))
               if re.fullmatch(rf"`{{{len(ticks)},}}", lines[i]))
    return "\n".join(lines[start + 1:end])


def outside_json(note: str) -> str:
    return note.split("<summary>Review JSON</summary>")[0]


# --- summary_note ---------------------------------------------------------------------------

def test_summary_note_starts_with_the_marker_then_the_score_and_verdict() -> None:
    lines = summary_note(make_review()).splitlines()

    assert lines[0] == MARKER
    assert lines[1] == "## 🤖 Review: 72/100 · 💬 comment"


@pytest.mark.parametrize(("verdict", "shown"), [("approve", "✅ approve"),
                                                ("request_changes", "⛔ request changes")])
def test_summary_note_heading_names_each_verdict(verdict: str, shown: str) -> None:
    assert summary_note(make_review(verdict=verdict)).splitlines()[1].endswith(shown)


def test_summary_note_table_lists_every_finding_and_marks_unplaced_ones() -> None:
    note = summary_note(make_review())

    rows = [ln for ln in note.splitlines() if ln.startswith("| ") and "Severity" not in ln]
    assert rows == [
        "| major | `src/app.py:12` | SEC-001 | SQL built by string formatting |",
        "| minor | `src/ghost.py:3` (not in diff) | - | Invented location |",
    ]


def test_summary_note_table_shows_ranges_and_old_side() -> None:
    review = make_review(findings=[placed_finding(line=4, end_line=6, side="old")])

    assert "| major | `src/app.py:4-6:old` |" in summary_note(review)


def test_summary_note_without_findings_says_so() -> None:
    note = summary_note(make_review(findings=[]))

    assert "No findings." in note
    assert "| Severity |" not in note


def test_summary_note_lists_skipped_files_with_reasons() -> None:
    note = summary_note(make_review())

    assert "**Skipped by policy:** `package-lock.json` (lock file), `assets/logo.png` (binary " \
        "file)" in note


def test_summary_note_footer_names_model_spec_commit_head_and_usage() -> None:
    footer = next(ln for ln in summary_note(make_review()).splitlines() if ln.startswith("<sub>"))

    assert "Model `qwen2.5-coder:7b` on models.example:11434" in footer
    assert "spec https://gitlab.example/group/spec.git @ `fedcba987654` (3 rules)" in footer
    assert "reviewed at `0123456789ab`" in footer
    assert "2 request(s), 1200+300 tokens" in footer


def test_summary_note_json_block_round_trips_to_the_same_review() -> None:
    review = make_review()

    assert Review.model_validate_json(json_block(summary_note(review))) == review


def test_summary_note_json_survives_backticks_in_model_text() -> None:
    review = make_review(
        summary="Uses ``` and ```` in prose.",
        findings=[placed_finding(message="Wrap it:\n```python\nquery(sql, args)\n```\nDone.",
                                 suggestion="````\nnot closed")])

    note = summary_note(review)

    assert re.search(r"^`{5,}json$", note, re.MULTILINE)
    assert Review.model_validate_json(json_block(note)) == review


def test_an_unclosed_fence_in_model_prose_cannot_swallow_the_rest_of_the_note() -> None:
    review = make_review(summary="Start:\n```\nnever closed",
                         findings=[placed_finding(message="   ~~~\nopen too")])

    note = summary_note(review)

    fences = [ln for ln in note.splitlines() if re.match(r" {0,3}(`{3,}|~{3,})", ln)]
    assert len(fences) == 2, fences  # our JSON block's opening and closing fence, no other
    assert re.fullmatch(r"`{3,}json", fences[0]) and fences[1] == fences[0].removesuffix("json")
    assert Review.model_validate_json(json_block(note)) == review


def test_summary_note_leaves_no_quick_action_or_mention_from_model_text() -> None:
    hostile = "/close\n@all please\n/Merge\n<script>x</script>"
    review = make_review(
        summary=hostile,
        findings=[placed_finding(title="/approve", message=hostile, suggestion="/Merge\nx = 1",
                                 rule="/label ~x", path="/close.py")],
        skipped_files=[SkippedFile(path="/unassign", reason="@here")],
    )

    note = summary_note(review)

    assert not GITLAB_QUICK_ACTION.search(note)
    assert "@all" not in outside_json(note)
    assert "@here" not in outside_json(note)
    assert "<script>" not in outside_json(note)
    assert Review.model_validate_json(json_block(note)) == review


def test_summary_note_of_a_local_review_says_local() -> None:
    note = summary_note(make_review(merge_request=None))

    assert "reviewed at `local`" in note


def test_a_review_too_large_for_a_note_points_to_the_artifact() -> None:
    many = [placed_finding(line=i, message="x" * 2000) for i in range(1, 120)]
    review = make_review(findings=many)
    assert len(review.model_dump_json(indent=2)) > MAX_JSON_CHARS

    note = summary_note(review)

    assert "see review.json, the job's artifact" in note
    assert not re.search(r"^`{3,}json$", note, re.MULTILINE)


# --- GitLab's note limit (1,000,000 characters; 400 "Note is too long" beyond) -----------------

GITLAB_NOTE_LIMIT = 1_000_000


def huge_review() -> Review:
    """What a 400-file merge request can produce: many long findings and long lists."""
    findings = [placed_finding(path=f"src/module_{i % 400}.py", line=i, message="m" * 5000,
                               title="t" * 1000, suggestion="s" * 3000,
                               severity=("minor" if i % 7 else "blocker"),
                               fingerprint=f"{i:016x}")
                for i in range(1, 2001)]
    skipped = [SkippedFile(path=f"assets/{'x' * 200}_{i}.png", reason="binary file")
               for i in range(2000)]
    return make_review(findings=findings, skipped_files=skipped,
                       summary="Summary. " * 50_000)


def test_a_huge_review_makes_a_summary_note_far_below_gitlabs_limit() -> None:
    note = summary_note(huge_review(), artifact="[review.json](https://ci.example/-/jobs/9/"
                        "artifacts/file/review.json)")

    assert len(note) < GITLAB_NOTE_LIMIT // 2
    assert "more finding(s) not shown" in note
    assert "… and " in note  # the skipped list says how many it left out
    notice = note.splitlines()[3]
    assert notice.startswith("_Too long for one note: ")
    assert notice.endswith(" left out here. The whole review is in [review.json]"
                           "(https://ci.example/-/jobs/9/artifacts/file/review.json)._")
    # The most severe come first: the table shows blockers before any minor finding.
    rows = [ln for ln in note.splitlines() if ln.startswith("| blocker") or
            ln.startswith("| minor")]
    first_minor = next(i for i, r in enumerate(rows) if r.startswith("| minor"))
    assert all(r.startswith("| blocker") for r in rows[:first_minor])
    assert first_minor == sum(1 for i in range(1, 2001) if i % 7 == 0)


def test_a_huge_finding_makes_an_inline_note_far_below_gitlabs_limit() -> None:
    from reviewer.identity import key
    from reviewer.render import finding_note

    f = placed_finding(title="t" * 900_000, message="m" * 900_000, suggestion="s" * 900_000)

    note = finding_note(f, (0, "s" * 900_000), key(f, None))

    assert len(note) < 50_000
    assert "review.json" in note
    assert "```suggestion" not in note  # too long to offer as a committable change


def test_the_summary_of_a_review_without_a_score_shows_none() -> None:
    note = summary_note(make_review(score=None, findings=[]))

    assert note.splitlines()[1] == "## 🤖 Review: no score · 💬 comment"
    assert "/100" not in note.split("<details><summary>Review JSON")[0]
