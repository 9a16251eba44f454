"""Inline threads, pure: GitLab positions, line codes, suggestions, notes and the posting plan."""

from __future__ import annotations

import difflib
import hashlib
import re
from typing import Any

import pytest

from reviewer import identity
from reviewer.check import place
from reviewer.diff import Change, FileDiff, parse_change
from reviewer.inline import Refs, Thread, anchors, line_code, plan, position, suggestion
from reviewer.markdown import ZWSP
from reviewer.model import Finding, PlacedFinding
from reviewer.render import InlineReport, finding_note, summary_note
from tests.conftest import finding, lines, review_of

REFS = Refs(base_sha="a" * 40, start_sha="b" * 40, head_sha="c" * 40)
SHAS = {"base_sha": "a" * 40, "start_sha": "b" * 40, "head_sha": "c" * 40}
APP_SHA1 = "13cce7fd076299c81b4986166f3d822791c9490e"  # sha1("app.py"), computed once by hand




# app.py, two hunks. Hunk 1: old 2 removed, new 2-3 added, then context old 3-5 = new 4-6.
# Hunk 2: context 20/21, added new 22, context 21/23, old 22 removed, added new 24.
APP = lines(
    "--- a/app.py",
    "+++ b/app.py",
    "@@ -1,5 +1,6 @@",
    " import os",
    "-import sys",
    "+import re",
    "+import json",
    " def main():",
    "     x = 1",
    "     return x",
    "@@ -20,3 +21,4 @@ def main():",
    " a = 1",
    "+b = 2",
    " c = 3",
    "-d = 4",
    "+d = 5",
)
RENAMED = lines("--- a/old/name.py", "+++ b/new/name.py", "@@ -1,3 +1,3 @@", " a", "-b", "+B",
                " c")
NEW_FILE = lines("--- /dev/null", "+++ b/src/new.py", "@@ -0,0 +1,3 @@", "+def add_one(x):",
                 "+    return x+1", "+")
DELETED = lines("--- a/legacy.py", "+++ /dev/null", "@@ -1,2 +0,0 @@", "-x = 1", "-y = 2")


def app() -> FileDiff:
    return parse_change(Change("app.py", "app.py", APP))


APP_FILES = {"app.py": app()}  # the diff the plans' findings were placed on


def renamed() -> FileDiff:
    return parse_change(Change("old/name.py", "new/name.py", RENAMED, renamed_file=True))


def new_file() -> FileDiff:
    return parse_change(Change("src/new.py", "src/new.py", NEW_FILE, new_file=True))


def deleted() -> FileDiff:
    return parse_change(Change("legacy.py", "legacy.py", DELETED, deleted_file=True))


def placed(file: FileDiff, line: int, **extra: Any) -> PlacedFinding:
    """A finding the way a run makes one: from the model's JSON, checked against the diff."""
    return place(Finding.model_validate(finding(file.path, line, **extra)), {file.path: file})


def key_of(f: PlacedFinding, file: FileDiff) -> identity.Key:
    return identity.key(f, identity.lines(file))


def mark_of(f: PlacedFinding, file: FileDiff) -> identity.Mark:
    """What the marker of f's thread says when read back."""
    mark = identity.read_marker(identity.marker(key_of(f, file)))
    assert mark is not None
    return mark


def diff_of(path: str, before: list[str], after: list[str]) -> FileDiff:
    text = "\n".join(difflib.unified_diff(before, after, f"a/{path}", f"b/{path}",
                                          lineterm="")) + "\n"
    return parse_change(Change(path, path, text))


# --- position ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("side", "line", "numbers"), [
    ("new", 2, {"new_line": 2}),                    # added
    ("new", 3, {"new_line": 3}),                    # added, the second in a row
    ("old", 2, {"old_line": 2}),                    # removed
    ("new", 5, {"old_line": 4, "new_line": 5}),     # context, numbers differ
    ("old", 4, {"old_line": 4, "new_line": 5}),     # the same context line from the old side
    ("new", 1, {"old_line": 1, "new_line": 1}),     # first line of a hunk
    ("new", 6, {"old_line": 5, "new_line": 6}),     # last line of a hunk
    ("new", 21, {"old_line": 20, "new_line": 21}),  # first line of the second hunk
    ("new", 22, {"new_line": 22}),                  # added between context lines
    ("old", 22, {"old_line": 22}),                  # removed, the second hunk
    ("new", 24, {"new_line": 24}),                  # added, last line of the diff
])
def test_position_gives_each_kind_of_line_the_numbers_gitlab_wants(
        side: str, line: int, numbers: dict[str, int]) -> None:
    f = placed(app(), line, side=side)
    assert position(f, app(), REFS) == {
        "position_type": "text", **SHAS, "old_path": "app.py", "new_path": "app.py", **numbers}


@pytest.mark.parametrize(("side", "line", "numbers"), [
    ("new", 2, {"new_line": 2}), ("old", 2, {"old_line": 2}),
    ("new", 3, {"old_line": 3, "new_line": 3})])
def test_position_on_a_renamed_file_names_both_paths(side: str, line: int,
                                                      numbers: dict[str, int]) -> None:
    f = placed(renamed(), line, side=side)
    assert position(f, renamed(), REFS) == {
        "position_type": "text", **SHAS, "old_path": "old/name.py", "new_path": "new/name.py",
        **numbers}


@pytest.mark.parametrize("line", [1, 2, 3])
def test_position_on_a_new_file_has_a_new_line_and_never_an_old_one(line: int) -> None:
    f = placed(new_file(), line)
    assert position(f, new_file(), REFS) == {
        "position_type": "text", **SHAS, "old_path": "src/new.py", "new_path": "src/new.py",
        "new_line": line}


@pytest.mark.parametrize("line", [1, 2])
def test_position_on_a_deleted_file_has_an_old_line_and_never_a_new_one(line: int) -> None:
    f = placed(deleted(), line, side="old")
    assert position(f, deleted(), REFS) == {
        "position_type": "text", **SHAS, "old_path": "legacy.py", "new_path": "legacy.py",
        "old_line": line}


@pytest.mark.parametrize(("file", "side", "line"), [
    (app, "new", 7),     # between the hunks
    (app, "new", 20),    # the line just before the second hunk
    (app, "new", 25),    # after the last hunk
    (app, "old", 6),     # between the hunks, old side
    (new_file, "old", 1),  # a new file has no old side
    (deleted, "new", 1),   # a deleted file has no new side
])
def test_position_is_none_for_a_line_outside_every_hunk(file: Any, side: str, line: int) -> None:
    f = placed(file(), line, side=side)
    assert not f.placed
    assert position(f, file(), REFS) is None
    # Even a finding that claims to be placed gets no position there.
    assert position(f.model_copy(update={"placed": True}), file(), REFS) is None


# --- anchors and line codes -------------------------------------------------------------------

def test_anchors_give_gitlabs_old_and_new_positions_for_every_line() -> None:
    # An added line sits before the next old line; a removed line before the next new line.
    [first, second] = app().hunks
    assert [(a.old_pos, a.new_pos) for a in anchors(first)] == [
        (1, 1), (2, 2), (3, 2), (3, 3), (3, 4), (4, 5), (5, 6)]
    assert [(a.old_pos, a.new_pos) for a in anchors(second)] == [
        (20, 21), (21, 22), (21, 23), (22, 24), (23, 24)]
    [created] = new_file().hunks
    assert [(a.old_pos, a.new_pos) for a in anchors(created)] == [(0, 1), (0, 2), (0, 3)]
    [removed] = deleted().hunks
    assert [(a.old_pos, a.new_pos) for a in anchors(removed)] == [(1, 0), (2, 0)]


def test_line_code_is_the_sha1_of_the_path_then_old_and_new_position() -> None:
    assert hashlib.sha1(b"app.py").hexdigest() == APP_SHA1
    codes = [line_code("app.py", a) for a in anchors(app().hunks[0])]
    assert codes == [f"{APP_SHA1}_{o}_{n}" for o, n in
                     [(1, 1), (2, 2), (3, 2), (3, 3), (3, 4), (4, 5), (5, 6)]]


# --- multi-line positions ---------------------------------------------------------------------

def code(old: int, new: int, path: str = "app.py") -> str:
    return f"{hashlib.sha1(path.encode()).hexdigest()}_{old}_{new}"


def test_a_range_in_one_hunk_has_a_line_range_and_is_anchored_on_its_end() -> None:
    f = placed(app(), 2, end_line=3)
    assert position(f, app(), REFS) == {
        "position_type": "text", **SHAS, "old_path": "app.py", "new_path": "app.py",
        "new_line": 3,
        "line_range": {"start": {"line_code": code(3, 2), "type": "new", "new_line": 2},
                       "end": {"line_code": code(3, 3), "type": "new", "new_line": 3}}}


def test_a_range_over_context_lines_has_points_without_a_type() -> None:
    f = placed(app(), 4, end_line=6)
    pos = position(f, app(), REFS)
    assert pos is not None
    assert (pos["old_line"], pos["new_line"]) == (5, 6)
    assert pos["line_range"] == {
        "start": {"line_code": code(3, 4), "type": None, "old_line": 3, "new_line": 4},
        "end": {"line_code": code(5, 6), "type": None, "old_line": 5, "new_line": 6}}


def test_a_range_on_the_old_side_starts_on_a_removed_line() -> None:
    f = placed(app(), 2, side="old", end_line=3)
    pos = position(f, app(), REFS)
    assert pos is not None
    assert (pos["old_line"], pos["new_line"]) == (3, 4)
    assert pos["line_range"] == {
        "start": {"line_code": code(2, 2), "type": "old", "old_line": 2},
        "end": {"line_code": code(3, 4), "type": None, "old_line": 3, "new_line": 4}}


def test_a_range_on_a_renamed_file_codes_its_lines_with_the_new_path() -> None:
    f = placed(renamed(), 1, end_line=2)
    pos = position(f, renamed(), REFS)
    assert pos is not None
    assert pos["line_range"]["start"]["line_code"] == code(1, 1, "new/name.py")
    assert pos["line_range"]["end"]["line_code"] == code(3, 2, "new/name.py")


@pytest.mark.parametrize("end_line", [22, 1, 2])  # another hunk, before the line, the line itself
def test_a_range_that_leaves_its_hunk_or_runs_backwards_gives_a_single_line_position(
        end_line: int) -> None:
    f = placed(app(), 2).model_copy(update={"end_line": end_line})  # as the model wrote it
    assert position(f, app(), REFS) == {
        "position_type": "text", **SHAS, "old_path": "app.py", "new_path": "app.py",
        "new_line": 2}


def test_place_narrows_a_range_across_hunks_so_the_position_is_single_line() -> None:
    f = placed(app(), 2, end_line=22)
    assert f.end_line is None
    pos = position(f, app(), REFS)
    assert pos is not None and "line_range" not in pos and pos["new_line"] == 2


def test_multiline_false_drops_the_range_but_keeps_the_anchor_the_suggestion_counts_from() -> None:
    f = placed(app(), 4, end_line=6)
    ranged = position(f, app(), REFS)
    single = position(f, app(), REFS, multiline=False)
    assert ranged is not None and single is not None
    assert "line_range" not in single
    assert single == {k: v for k, v in ranged.items() if k != "line_range"}
    assert (single["old_line"], single["new_line"]) == (5, 6)


# --- suggestion -------------------------------------------------------------------------------

def test_a_suggestion_on_one_new_line_covers_that_line() -> None:
    f = placed(app(), 2, suggestion="import regex")
    assert suggestion(f, app()) == (0, "import regex")


def test_a_suggestion_over_a_range_reaches_back_from_the_anchor_to_the_first_line() -> None:
    f = placed(app(), 2, end_line=3, suggestion="import re, json")
    assert suggestion(f, app()) == (1, "import re, json")
    f = placed(app(), 1, end_line=6, suggestion="pass")
    assert suggestion(f, app()) == (5, "pass")


def test_no_suggestion_on_the_old_side() -> None:
    f = placed(app(), 2, side="old", suggestion="import sys")
    assert suggestion(f, app()) is None
    f = placed(app(), 4, side="old", suggestion="def main():")  # context, seen from the old side
    assert suggestion(f, app()) is None


def test_no_suggestion_without_replacement_code_or_off_the_diff() -> None:
    assert suggestion(placed(app(), 2), app()) is None
    assert suggestion(placed(app(), 2, suggestion=""), app()) is None
    assert suggestion(placed(app(), 10, suggestion="x = 2"), app()) is None


def test_no_suggestion_when_a_line_of_the_range_is_not_in_the_hunk() -> None:
    # New lines 1-3 and 5-6 are in the diff, new line 4 is not: a range over 2..5 would replace
    # a line nobody sees.
    gap = parse_change(Change("gap.py", "gap.py", lines(
        "@@ -1,3 +1,3 @@", " a", "-b", "+B", " c", "@@ -5,2 +5,2 @@", "-e", "+E", " f")))
    f = placed(gap, 2, suggestion="B2\nc\nd\nE2").model_copy(update={"end_line": 5})
    assert suggestion(f, gap) is None
    f = placed(app(), 5, suggestion="x = 2").model_copy(update={"end_line": 7})  # past the hunk
    assert suggestion(f, app()) is None


def test_a_suggestion_spans_at_most_100_lines_above_its_anchor() -> None:
    body = [f"v{i} = {i}" for i in range(1, 103)]
    big = parse_change(Change("big.py", "big.py", lines(
        "@@ -0,0 +1,102 @@", *(f"+{ln}" for ln in body)), new_file=True))
    assert suggestion(placed(big, 1, end_line=101, suggestion="v = 0"), big) == (100, "v = 0")
    assert suggestion(placed(big, 1, end_line=102, suggestion="v = 0"), big) is None
    assert suggestion(placed(big, 2, end_line=102, suggestion="v = 0"), big) == (100, "v = 0")


@pytest.mark.parametrize(("model", "expected"), [
    ("return x", "    return x"),                            # indentation dropped: restored
    ("    return x", "    return x"),                        # kept: left alone
    ("  return x", "  return x"),                            # the model's own indentation stays
    ("\n\nreturn x\n", "    return x"),                      # blank lines around are dropped
    ("if x:\n    return x\nreturn 0", "    if x:\n        return x\n    return 0"),
    ("if x:\n\n    return x", "    if x:\n\n        return x"),  # a blank line stays blank
    ("    if x:\n        return x", "    if x:\n        return x"),
])
def test_a_suggestion_keeps_the_indentation_of_the_line_it_replaces(model: str,
                                                                     expected: str) -> None:
    f = placed(app(), 6, suggestion=model)
    assert suggestion(f, app()) == (0, expected)


def test_a_suggestion_for_an_unindented_line_is_left_as_written() -> None:
    f = placed(app(), 2, suggestion="import re\nimport json")
    assert suggestion(f, app()) == (0, "import re\nimport json")


def test_tab_indentation_is_restored_as_tabs() -> None:
    tabbed = parse_change(Change("t.go", "t.go", lines("@@ -1,2 +1,2 @@", " func f() {",
                                                       "-\treturn 1", "+\treturn 2")))
    assert suggestion(placed(tabbed, 2, suggestion="return 3"), tabbed) == (0, "\treturn 3")


# --- a suggestion applied the way GitLab applies it --------------------------------------------

BEFORE = ["def total(items):", "    result = 0", "    for item in items:",
          "        result = result + item", "    return result", "", "", "print(total([1]))"]
AFTER = ["def total(items):", "    result = 0", "    for item in items:",
         "        result += item", "        print(result)", "    return result", "", "",
         "print(total([1]))"]
SUGGESTION = re.compile(r"^```suggestion:-(\d+)\+(\d+)\n(.*?)\n```$", re.DOTALL | re.MULTILINE)


def apply_as_gitlab(note: str, pos: dict[str, Any], file_lines: list[str]) -> list[str]:
    """GitLab's Gitlab::Diff::Suggestion: the lines from `above` lines over the note's line
    (position new_line) to `below` lines under it are replaced with the block's lines."""
    [(above, below, text)] = SUGGESTION.findall(note)
    anchor = pos["new_line"]
    out = list(file_lines)
    out[anchor - 1 - int(above):anchor + int(below)] = text.split("\n")
    return out


@pytest.mark.parametrize(("line", "end_line", "model", "replacement"), [
    (4, None, "result += item * 2", ["        result += item * 2"]),
    (4, 5, "result += item", ["        result += item"]),
    (3, 5, "    for item in items:\n        result += item",
     ["    for item in items:", "        result += item"]),
    (4, 5, "if item:\n    result += item\nprint(result)",
     ["        if item:", "            result += item", "        print(result)"]),
    (5, 6, "        print(result)\n    return result * 2",
     ["        print(result)", "    return result * 2"]),  # its own indentation, kept
])
@pytest.mark.parametrize("multiline", [True, False])  # the range, or GitLab refused it
def test_a_suggestion_applied_as_gitlab_does_gives_the_intended_code(
        line: int, end_line: int | None, model: str, replacement: list[str],
        multiline: bool) -> None:
    file = diff_of("calc.py", BEFORE, AFTER)
    f = placed(file, line, end_line=end_line, suggestion=model)
    assert f.end_line == end_line
    pos = position(f, file, REFS, multiline)
    assert pos is not None
    note = finding_note(f, suggestion(f, file), key_of(f, file))

    applied = apply_as_gitlab(note, pos, AFTER)

    assert applied == AFTER[:line - 1] + replacement + AFTER[(end_line or line):]


def test_a_suggestion_for_a_range_that_leaves_the_diff_is_not_offered_for_one_line() -> None:
    before = [f"line{i} = {i}" for i in range(1, 21)]
    after = [*before[:9], "line10 = 100", *before[10:]]
    file = diff_of("long.py", before, after)  # one hunk: new lines 7..13
    model = "line12 = 12\nline13 = 13\nline14 = 14\nline15 = 150"
    f = placed(file, 12, end_line=15, suggestion=model)
    pos = position(f, file, REFS)
    assert pos is not None
    note = finding_note(f, suggestion(f, file), key_of(f, file))

    intended = [*after[:11], *model.split("\n"), *after[15:]]
    assert "```suggestion" not in note or apply_as_gitlab(note, pos, after) == intended


# --- finding_note -----------------------------------------------------------------------------

def test_finding_note_starts_with_the_hidden_marker_then_severity_rule_and_title() -> None:
    f = placed(app(), 2, severity="critical", rule="SEC-001", title="Unsafe import",
               message="Use the safe one.")
    note = finding_note(f, None, key_of(f, app())).split("\n")
    assert note[0] == identity.marker(key_of(f, app()))
    assert note[0].startswith(f"<!-- reviewer:finding v2 {f.fingerprint} ")
    assert note[1] == "**critical** · SEC-001 · **Unsafe import**"
    assert note[3] == "Use the safe one."


def test_finding_note_without_a_rule_shows_severity_and_title() -> None:
    f = placed(app(), 2, severity="minor", rule=None, title="Naming")
    assert finding_note(f, None, key_of(f, app())).split("\n")[1] == "**minor** · **Naming**"


def test_finding_note_makes_model_text_inert() -> None:
    f = placed(app(), 2, rule=None, title="/close @here <b>bold</b>",
               message="/approve\n  /merge\n@all please look <img src=x onerror=alert(1)>\n"
                       "/LABEL ~bug")
    note = finding_note(f, None, key_of(f, app()))
    assert not re.search(r"^\s*/[a-z]", note, re.MULTILINE | re.IGNORECASE), note
    assert not re.search(r"@(all|here)\b", note)
    assert f"@{ZWSP}all" in note and f"@{ZWSP}here" in note
    assert "<img" not in note and "<b>" not in note
    assert "&lt;img src=x" in note and "&lt;b>bold&lt;/b>" in note


def test_finding_note_offers_a_committable_suggestion() -> None:
    f = placed(app(), 6, suggestion="return x + 1")
    note = finding_note(f, suggestion(f, app()), key_of(f, app()))
    assert note.endswith("\n\n```suggestion:-0+0\n    return x + 1\n```")
    assert "Suggested change:" not in note


@pytest.mark.parametrize("code", [
    "x = '''\n```\n'''",           # a fence of its own would end the block early
    "print('```')",
    "/approve\nx = 2",             # a line that reads as a quick action
    "x = 2\n/Merge",
    "/usr/bin/env python",
])
def test_a_suggestion_gitlab_could_misread_is_shown_but_not_offered(code: str) -> None:
    top = parse_change(Change("top.py", "top.py", lines("@@ -1 +1 @@", "-x = 1", "+x = 2")))
    f = placed(top, 1, suggestion=code)
    assert suggestion(f, top) is not None  # placeable; only the text is the problem

    note = finding_note(f, suggestion(f, top), key_of(f, top))

    assert "```suggestion" not in note
    assert "Suggested change:" in note
    body = note.split("Suggested change:", 1)[1]
    assert re.search(r"^(`{3,})\n.*\n\1$", body, re.DOTALL | re.MULTILINE), body
    assert not re.search(r"^/[a-z]", note, re.MULTILINE | re.IGNORECASE), note


def test_a_suggestion_indented_off_column_zero_is_committable() -> None:
    # "/approve" comes back indented like the line it replaces: GitLab runs only column 0.
    f = placed(app(), 6, suggestion="/approve")
    note = finding_note(f, suggestion(f, app()), key_of(f, app()))
    assert "```suggestion:-0+0\n    /approve\n```" in note


def test_a_suggestion_that_cannot_be_placed_is_shown_as_plain_code() -> None:
    f = placed(app(), 2, side="old", suggestion="import sys")
    note = finding_note(f, suggestion(f, app()), key_of(f, app()))
    assert "```suggestion" not in note
    assert note.endswith("Suggested change:\n\n```\nimport sys\n```")


def test_a_finding_without_a_suggestion_has_no_code_block() -> None:
    f = placed(app(), 2, message="Plain words.")
    note = finding_note(f, None, key_of(f, app()))
    assert "```" not in note and "Suggested change" not in note


# --- plan -------------------------------------------------------------------------------------

def five() -> list[PlacedFinding]:
    """minor, blocker, major, critical on the diff; one major off it."""
    return [placed(app(), 3, severity="minor", title="minor"),
            placed(app(), 2, severity="blocker", title="blocker"),
            placed(app(), 5, severity="major", title="major"),
            placed(app(), 21, severity="critical", title="critical"),
            placed(app(), 10, severity="major", title="unplaced")]


def titles(findings: tuple[PlacedFinding, ...]) -> list[str]:
    return [f.title for f in findings]


def test_plan_posts_new_findings_most_severe_first_up_to_the_limit() -> None:
    findings = five()
    result = plan(findings, [], limit=3, enabled=True, files=APP_FILES)
    assert titles(result.post) == ["blocker", "critical", "major"]
    assert titles(result.summary_only) == ["minor", "unplaced"]
    assert result.known == () and result.resolve == ()


def test_plan_with_a_high_limit_posts_every_placed_finding_and_never_an_unplaced_one() -> None:
    result = plan(five(), [], limit=100, enabled=True, files=APP_FILES)
    assert titles(result.post) == ["blocker", "critical", "major", "minor"]
    assert titles(result.summary_only) == ["unplaced"]


@pytest.mark.parametrize("resolved", [False, True])
def test_a_finding_that_already_has_a_thread_is_known_and_counts_against_the_limit(
        resolved: bool) -> None:
    findings = five()
    critical = findings[3]
    result = plan(findings, [Thread("d1", mark_of(critical, app()), resolved)], limit=3,
                  enabled=True, files=APP_FILES)
    assert titles(result.known) == ["critical"]
    assert titles(result.post) == ["blocker", "major"]
    assert titles(result.summary_only) == ["minor", "unplaced"]
    assert result.resolve == ()


def test_known_threads_beyond_the_limit_leave_nothing_to_post() -> None:
    findings = five()
    threads = [Thread(f"d{i}", mark_of(f, app()), False) for i, f in enumerate(findings[:3])]
    result = plan(findings, threads, limit=2, enabled=True, files=APP_FILES)
    assert titles(result.known) == ["blocker", "major", "minor"]
    assert result.post == ()
    assert titles(result.summary_only) == ["critical", "unplaced"]


def test_plan_resolves_our_open_threads_whose_finding_is_gone_and_only_those() -> None:
    findings = five()
    gone_open = Thread("d1", identity.Mark("0" * 16, "0" * 16), resolved=False)
    gone_resolved = Thread("d2", identity.Mark("1" * 16), resolved=True)
    live = Thread("d3", mark_of(findings[0], app()), resolved=False)
    result = plan(findings, [gone_open, gone_resolved, live], limit=10, enabled=True,
                  files=APP_FILES)
    assert result.resolve == (gone_open,)
    assert titles(result.known) == ["minor"]


def test_a_fingerprint_reported_twice_is_posted_once_as_its_most_severe() -> None:
    low = placed(app(), 2, severity="minor", title="said once")
    high = placed(app(), 2, severity="critical", title="said again")
    assert low.fingerprint == high.fingerprint
    result = plan([low, high], [], limit=10, enabled=True, files=APP_FILES)
    assert titles(result.post) == ["said again"]
    assert result.summary_only == ()


def test_inline_off_posts_nothing_and_keeps_everything_for_the_summary() -> None:
    findings = five()
    result = plan(findings, [Thread("d1", mark_of(findings[1], app()), False)], limit=10,
                  enabled=False, files=APP_FILES)
    assert result.post == () and result.known == ()
    assert result.summary_only == tuple(findings)


def test_a_limit_of_zero_posts_nothing() -> None:
    result = plan(five(), [], limit=0, enabled=True, files=APP_FILES)
    assert result.post == ()
    assert len(result.summary_only) == 5


def test_a_finding_on_a_line_that_moved_keeps_its_thread() -> None:
    before = ["import os", "", "def f(x):", "    return x * 2", ""]
    first = diff_of("m.py", before, [*before[:3], "    return x * 3", *before[4:]])
    second = diff_of("m.py", before, ["import os", "import sys", *before[1:3],
                                      "    return x * 3", *before[4:]])
    was = placed(first, 4, title="Magic number")
    now = placed(second, 5, title="Magic number")
    assert (was.placed, now.placed) == (True, True)
    assert was.fingerprint == now.fingerprint

    result = plan([now], [Thread("d1", mark_of(was, first), resolved=False)], limit=10,
                  enabled=True, files={"m.py": second})

    assert result.known == (now,)
    assert result.post == () and result.resolve == () and result.summary_only == ()


# --- summary_note with an inline report ----------------------------------------------------------



def details(note: str) -> str:
    start = note.index("<details><summary>Findings in detail</summary>")
    return note[start:note.index("</details>", start)]


def table_rows(note: str) -> dict[str, str]:
    return {row.split(" | ")[-1].rstrip(" |"): row for row in note.splitlines()
            if row.startswith("| ") and "Severity" not in row}


def test_summary_note_marks_inline_findings_and_details_only_the_others() -> None:
    inline_one = placed(app(), 2, severity="blocker", title="Inline one", message="Posted.")
    here = placed(app(), 3, severity="minor", title="Summary one", message="Kept here.")
    ghost = placed(app(), 10, title="Off the diff", message="Nowhere.")
    report = InlineReport(inline=frozenset({inline_one.fingerprint}), new=1, resolved=2)

    note = summary_note(review_of([inline_one, here, ghost]), report)

    rows = table_rows(note)
    assert rows["Inline one"].startswith("| blocker | `app.py:2` 💬 |")
    assert "💬" not in rows["Summary one"] and "💬" not in rows["Off the diff"]
    assert ("_1 finding(s) inline (💬), 2 in this summary; since the last run: 1 new, "
            "2 resolved._") in note
    assert "refused" not in note
    shown = details(note)
    assert "Summary one" in shown and "Kept here." in shown
    assert "Off the diff" in shown and "Nowhere." in shown
    assert "Inline one" not in shown and "Posted." not in shown


def test_summary_note_says_how_many_positions_gitlab_refused() -> None:
    findings = [placed(app(), 2, title="A"), placed(app(), 3, title="B")]
    report = InlineReport(inline=frozenset({findings[0].fingerprint}), new=1, rejected=1)
    note = summary_note(review_of(findings), report)
    assert ("_1 finding(s) inline (💬), 1 in this summary; since the last run: 1 new, "
            "0 resolved; GitLab refused the position of 1, shown here instead._") in note


def test_summary_note_with_every_finding_inline_has_no_details_section() -> None:
    findings = [placed(app(), 2, title="A"), placed(app(), 3, title="B")]
    report = InlineReport(inline=frozenset(f.fingerprint for f in findings))
    note = summary_note(review_of(findings), report)
    assert "2 finding(s) inline (💬), 0 in this summary" in note
    assert "Findings in detail" not in note


def test_summary_note_from_a_plan_shows_what_the_plan_decided() -> None:
    findings = five()
    decided = plan(findings, [], limit=2, enabled=True, files=APP_FILES)
    report = InlineReport(inline=frozenset(f.fingerprint for f in decided.post),
                          new=len(decided.post))
    note = summary_note(review_of(findings), report)
    assert "_2 finding(s) inline (💬), 3 in this summary; since the last run: 2 new" in note
    shown = details(note)
    assert [t for t in ("minor", "blocker", "major", "critical", "unplaced")
            if f"**{t}**" in shown] == ["minor", "major", "unplaced"]
