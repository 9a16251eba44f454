"""Findings checked against a real parsed diff; score, verdict and gate arithmetic."""

from __future__ import annotations

from typing import Any

import pytest

from reviewer.check import (
    cap_score,
    cite,
    clamp,
    consistent_verdict,
    gate,
    incomplete_verdict,
    merge_score,
    merge_verdict,
    outside_change,
    place,
)
from reviewer.diff import Change, FileDiff, parse_change
from reviewer.identity import legacy_fingerprint
from reviewer.model import Finding, ModelAnswer, PlacedFinding
from tests.conftest import finding, lines

# app.py: hunk 1 adds new lines 2-3 (old line 2 removed); context old 3 = new 4, old 4 = new 5.
# hunk 2: context 20/21, removed old 21, context 22/22.
APP = lines(
    "@@ -1,4 +1,5 @@",
    " import os",
    "-import sys",
    "+import re",
    "+import sys",
    " x = compute(a)",
    " def main():",
    "@@ -20,3 +21,2 @@ def main():",
    "     x = 1",
    "-    y = 2",
    "     return x",
)
RENAMED = lines("@@ -1,3 +1,3 @@", " a", "-b", "+B", " c")


def files() -> dict[str, FileDiff]:
    parsed = [parse_change(Change("app.py", "app.py", APP)),
              parse_change(Change("old/name.py", "new/name.py", RENAMED, renamed_file=True))]
    return {f.path: f for f in parsed}


def make(path: str = "app.py", line: int = 2, **extra: Any) -> Finding:
    return Finding.model_validate(finding(path, line, **extra))


def placed(path: str = "app.py", line: int = 2, **extra: Any) -> PlacedFinding:
    return place(make(path, line, **extra), files())


# --- place ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("side", "line"), [
    ("new", 2),  # added
    ("new", 4),  # context, by its new number
    ("old", 2),  # removed
    ("old", 3),  # the same context line, by its old number
    ("new", 21),  # context in the second hunk
    ("old", 21),  # removed in the second hunk
])
def test_a_finding_on_a_line_of_the_diff_is_placed(side: str, line: int) -> None:
    result = placed(line=line, side=side)

    assert result.placed is True
    assert (result.path, result.line, result.side) == ("app.py", line, side)


def test_a_context_line_is_addressable_from_both_sides_with_one_fingerprint() -> None:
    by_new, by_old = placed(line=4, side="new"), placed(line=3, side="old")

    assert by_new.placed and by_old.placed
    assert by_new.fingerprint == by_old.fingerprint


@pytest.mark.parametrize(("path", "line", "side"), [
    ("ghost.py", 2, "new"),  # path not in the diff
    ("app.py", 10, "new"),  # between the hunks
    ("app.py", 10, "old"),
    ("app.py", 300, "new"),  # after the last hunk
    ("app.py", 5, "old"),  # new line 5 exists; the old side of hunk 1 ends at 4
    ("app.py", 23, "old"),
])
def test_a_finding_off_the_diff_is_kept_unplaced_and_unmoved(path: str, line: int,
                                                             side: str) -> None:
    original = make(path, line, side=side, end_line=line + 1, suggestion="fixed()")

    result = place(original, files())

    assert result.placed is False
    assert result.model_dump(exclude={"placed", "fingerprint", "in_change"}) == \
        original.model_dump()


def test_place_returns_one_finding_for_each_finding_given() -> None:
    given = [make(line=2), make("ghost.py", 1), make(line=999), make(line=2, side="old")]

    result = [place(f, files()) for f in given]

    assert [r.placed for r in result] == [True, False, False, True]
    assert [(r.path, r.line) for r in result] == [(f.path, f.line) for f in given]


def test_a_finding_on_a_renamed_files_old_path_is_placed_on_the_file() -> None:
    result = placed("old/name.py", 2, side="new")

    assert result.placed is True
    assert result.path == "new/name.py"
    assert result.fingerprint == placed("new/name.py", 2).fingerprint


def test_a_name_with_a_control_character_takes_the_finding_on_its_cleaned_name() -> None:
    """git allows an ESC in a file name; the answer's cleaning strips it from what the model
    says, so the finding names the file without it and must still land on the file."""
    real = parse_change(Change("evil\x1b[31mred.py", "evil\x1b[31mred.py", APP))
    result = place(make("evil[31mred.py", 2), {real.path: real} | files())

    assert (result.path, result.placed) == ("evil\x1b[31mred.py", True)
    assert outside_change([result], [real.path])[0].in_change is True


def test_the_b_prefix_a_model_copies_from_the_diff_header_is_dropped() -> None:
    result = placed("b/app.py", 2)

    assert (result.path, result.placed) == ("app.py", True)


def test_a_real_top_level_b_folder_keeps_its_name() -> None:
    real = parse_change(Change("b/tool.py", "b/tool.py", RENAMED))
    result = place(make("b/tool.py", 2), {real.path: real})

    assert (result.path, result.placed) == ("b/tool.py", True)


def test_the_b_prefix_is_kept_when_the_stripped_path_is_not_in_the_diff_either() -> None:
    result = placed("b/ghost.py", 2)

    assert (result.path, result.placed) == ("b/ghost.py", False)


@pytest.mark.parametrize(("line", "end_line", "side", "kept"), [
    (2, 3, "new", 3),  # both added lines
    (2, 5, "new", 5),  # to the end of the hunk
    (2, 2, "new", 2),
    (20, 22, "old", 22),  # context to context across a removed line
    (2, 6, "new", None),  # past the end of the hunk
    (3, 2, "new", None),  # before the start
    (1, 200, "new", None),  # far outside the file
    (2, 21, "new", None),  # into the next hunk: new lines 6-20 are not in the diff
    (2, 21, "old", None),  # the same on the old side
])
def test_an_end_line_that_leaves_the_diff_or_precedes_the_line_is_dropped(
        line: int, end_line: int, side: str, kept: int | None) -> None:
    result = placed(line=line, side=side, end_line=end_line)

    assert result.placed is True
    assert result.line == line
    assert result.end_line == kept


# --- fingerprint ----------------------------------------------------------------------------

def test_fingerprint_is_stable_when_the_same_line_moves_to_another_number() -> None:
    early = parse_change(Change("app.py", "app.py", lines("@@ -1 +1,2 @@", " a", "+eval(x)")))
    later = parse_change(Change("app.py", "app.py", lines("@@ -40 +40,2 @@", " a", "+eval(x)")))

    first = place(make(line=2), {"app.py": early})
    moved = place(make(line=41), {"app.py": later})

    assert first.placed and moved.placed
    assert first.fingerprint == moved.fingerprint


def test_fingerprint_ignores_changes_of_indentation_and_spacing() -> None:
    narrow = parse_change(Change("app.py", "app.py", lines("@@ -1 +1,2 @@", " a", "+eval(x)")))
    wide = parse_change(Change("app.py", "app.py", lines("@@ -1 +1,2 @@", " a",
                                                          "+\t    EVAL(x)  ")))

    assert place(make(line=2), {"app.py": narrow}).fingerprint == place(
        make(line=2), {"app.py": wide}).fingerprint


def test_the_first_versions_fingerprint_is_computed_as_it_was() -> None:
    # Threads posted before markers were versioned carry these: they must still be found.
    assert legacy_fingerprint("R1", "a.py", "x = compute(a)") == "8e71c80f50cc4704"
    assert legacy_fingerprint(None, "app.py", "    conn = get_connection()") == \
        "b5ec2645c820cd8b"
    assert legacy_fingerprint("R1", "a.py", "x = compute(a)") == legacy_fingerprint(
        "R1", "a.py", "\t    x   =  compute(a)  ")


@pytest.mark.parametrize(("rule", "path", "text"), [
    ("R2", "a.py", "x = compute(a)"),
    (None, "a.py", "x = compute(a)"),
    ("R1", "b.py", "x = compute(a)"),
    ("R1", "a.py", "x = compute(b)"),
])
def test_the_first_versions_fingerprint_differs_for_another_rule_path_or_text(
        rule: str | None, path: str, text: str) -> None:
    assert legacy_fingerprint(rule, path, text) != legacy_fingerprint("R1", "a.py",
                                                                      "x = compute(a)")


def test_fingerprint_of_a_finding_with_a_rule_comes_from_its_line_not_its_words() -> None:
    one = placed(line=2, title="Unused import")
    two = placed(line=2, title="Another wording", message="Said otherwise.")

    assert one.fingerprint == two.fingerprint
    assert one.fingerprint != placed(line=2, rule="SEC-001").fingerprint


def test_fingerprints_of_two_problems_on_one_line_without_a_rule_differ() -> None:
    injection = placed(line=2, rule=None, severity="critical", title="SQL injection")
    style = placed(line=2, rule=None, severity="minor", title="Line too long")

    assert injection.fingerprint != style.fingerprint


def test_fingerprints_of_two_lines_with_the_same_text_differ() -> None:
    twice = parse_change(Change("db.py", "db.py", lines(
        "@@ -0,0 +1,3 @@", "+conn = get_connection()", "+x = 1", "+conn = get_connection()")))

    first, second = place(make("db.py", 1), {"db.py": twice}), place(make("db.py", 3),
                                                                     {"db.py": twice})

    assert first.placed and second.placed
    assert first.fingerprint != second.fingerprint


# --- score ----------------------------------------------------------------------------------

def answer(score: int, verdict: str = "comment", *severities: str) -> ModelAnswer:
    return ModelAnswer.model_validate({
        "score": score, "verdict": verdict, "summary": "s",
        "findings": [finding("app.py", 2, s) for s in severities]})


def test_merge_score_weights_each_answer_by_its_changed_lines() -> None:
    assert merge_score([answer(90), answer(50)], [30, 10]) == 80
    assert merge_score([answer(90), answer(50)], [10, 30]) == 60


def test_merge_score_of_equal_scores_is_that_score_whatever_the_weights() -> None:
    # A request with no changed lines counts as one line, on both sides of the division.
    assert merge_score([answer(50), answer(50)], [0, 1]) == 50
    assert merge_score([answer(70), answer(70)], [0, 0]) == 70


def test_merge_score_without_answers_is_none_not_100() -> None:
    assert merge_score([], []) is None


def test_nothing_answered_is_a_comment_never_an_approval() -> None:
    assert merge_verdict([]) == "comment"


@pytest.mark.parametrize(("verdict", "complete", "expected"), [
    ("approve", True, "approve"), ("approve", False, "comment"),
    ("comment", False, "comment"), ("request_changes", False, "request_changes"),
])
def test_an_incomplete_review_never_approves(verdict: str, complete: bool,
                                             expected: str) -> None:
    assert incomplete_verdict(verdict, complete) == expected  # type: ignore[arg-type]


def test_a_review_without_a_score_passes_fail_under_but_not_fail_on() -> None:
    assert gate(None, [], 60, None) is None
    assert gate(None, answer(50, "comment", "major").findings, None, "major") is not None


def test_cap_score_keeps_no_score_as_none() -> None:
    assert cap_score(None, answer(50, "comment", "blocker").findings) is None


def test_model_answer_accepts_out_of_range_scores_and_merge_score_clamps_them() -> None:
    low, high = answer(-5), answer(140)

    assert (low.score, high.score) == (-5, 140)
    assert merge_score([low], [3]) == 0
    assert merge_score([high], [3]) == 100


@pytest.mark.parametrize(("score", "clamped"), [(-5, 0), (0, 0), (55, 55), (100, 100),
                                                (140, 100)])
def test_clamp_keeps_a_score_within_0_and_100(score: int, clamped: int) -> None:
    assert clamp(score) == clamped


@pytest.mark.parametrize(("severities", "capped"), [
    ((), 95),
    (("info",), 95),
    (("minor",), 95),
    (("major",), 79),
    (("critical",), 49),
    (("blocker",), 30),
    (("minor", "blocker", "major"), 30),
])
def test_cap_score_limits_the_score_by_the_worst_finding(severities: tuple[str, ...],
                                                         capped: int) -> None:
    assert cap_score(95, answer(95, "comment", *severities).findings) == capped


def test_cap_score_never_raises_a_lower_score() -> None:
    assert cap_score(12, answer(12, "comment", "blocker").findings) == 12


# --- verdict --------------------------------------------------------------------------------

@pytest.mark.parametrize(("verdict", "severities", "expected"), [
    ("approve", ("critical",), "request_changes"),
    ("approve", ("blocker",), "request_changes"),
    ("approve", ("major",), "comment"),
    ("approve", ("minor", "info"), "approve"),
    ("approve", (), "approve"),
    ("request_changes", ("minor",), "comment"),
    ("request_changes", (), "comment"),
    ("request_changes", ("major",), "request_changes"),
    ("comment", (), "comment"),
    ("comment", ("major",), "comment"),
    ("comment", ("critical",), "request_changes"),
])
def test_consistent_verdict_follows_the_worst_finding(verdict: str, severities: tuple[str, ...],
                                                      expected: str) -> None:
    given = answer(50, verdict, *severities)

    assert consistent_verdict(given.verdict, given.findings) == expected


@pytest.mark.parametrize(("verdicts", "strictest"), [
    (["approve", "comment", "approve"], "comment"),
    (["comment", "request_changes", "approve"], "request_changes"),
    (["approve", "approve"], "approve"),
    ([], "comment"),
])
def test_merge_verdict_takes_the_strictest(verdicts: list[str], strictest: str) -> None:
    assert merge_verdict([answer(50, v) for v in verdicts]) == strictest


# --- gate -----------------------------------------------------------------------------------

def test_gate_passes_a_score_equal_to_fail_under_and_fails_one_below() -> None:
    assert gate(70, [], 70, None) is None
    assert gate(69, [], 70, None) == "score 69 is below --fail-under 70"


def test_gate_fails_on_a_finding_exactly_at_fail_on_and_passes_one_below() -> None:
    major, minor = answer(50, "comment", "major").findings, answer(50, "comment", "minor").findings

    assert gate(90, major, None, "major") == "1 finding(s) at or above --fail-on major"
    assert gate(90, minor, None, "major") is None


def test_gate_counts_every_finding_at_or_above_fail_on() -> None:
    found = answer(50, "comment", "info", "major", "blocker").findings

    assert gate(90, found, None, "major") == "2 finding(s) at or above --fail-on major"


def test_gate_without_thresholds_always_passes() -> None:
    assert gate(0, answer(0, "comment", "blocker").findings, None, None) is None


@pytest.mark.parametrize(("given", "kept"), [
    ("SEC-001", "SEC-001"),
    ("sec-001 ", "SEC-001"),
    ("approve", None),  # small models put anything there; a rule the spec lacks would mislead
    ("SEC-999", None),
    (None, None),
])
def test_cite_keeps_only_rule_ids_the_spec_has(given: str | None, kept: str | None) -> None:
    assert cite(make(rule=given), frozenset({"SEC-001", "COR-002"})).rule == kept
