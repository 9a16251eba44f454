"""Thread identity, pure: anchors with occurrences, the same finding in other words, the
versioned marker, and the posting plan built on them (issue 10, item 1)."""

from __future__ import annotations

import base64
import difflib
from typing import Any

import pytest

from reviewer import identity
from reviewer.check import place
from reviewer.diff import Change, FileDiff, parse_change
from reviewer.identity import Mark, key, lines, marker, read_marker, same, similarity
from reviewer.inline import Plan, Thread, plan
from reviewer.model import Finding, PlacedFinding
from tests.conftest import finding

DB = ["import db", "", "def load(user_id):", "    conn = get_connection()",
      "    return conn.query('SELECT * FROM users WHERE id = ' + user_id)", "",
      "def save(row):", "    conn = get_connection()", "    conn.insert(row)", ""]
QUERY = 5  # the line of the query, in DB
# One finding told three ways, as a model tells it from run to run; and another problem.
WORDINGS = [
    ("SQL built from user input",
     "The query string concatenates user_id; use a parameterised query."),
    ("User input is concatenated into the SQL query",
     "user_id is concatenated into the query string; pass it as a parameter."),
    ("SQL query built by concatenating user input",
     "Concatenating user_id into the query allows SQL injection; use a parameter."),
]
STYLE = ("Line too long", "This line is longer than 100 characters.")


def diff_of(before: list[str], after: list[str], path: str = "db.py") -> FileDiff:
    text = "\n".join(difflib.unified_diff(before, after, f"a/{path}", f"b/{path}",
                                          lineterm="")) + "\n"
    return parse_change(Change(path, path, text))


def new_file(content: list[str], path: str = "db.py") -> FileDiff:
    return diff_of([], content, path)


def found(file: FileDiff, line: int, **extra: Any) -> PlacedFinding:
    result = place(Finding.model_validate(finding(file.path, line, **extra)), {file.path: file})
    assert result.placed
    return result


def ruleless(file: FileDiff, line: int, words: tuple[str, str], severity: str = "critical"
             ) -> PlacedFinding:
    return found(file, line, rule=None, severity=severity, title=words[0], message=words[1])


def key_of(f: PlacedFinding, file: FileDiff) -> identity.Key:
    return key(f, lines(file))


def threads_after(decided: Plan, before: list[Thread]) -> list[Thread]:
    """Our threads once a plan is carried out: each post becomes a thread marked as GitLab
    would store it, each resolved one is resolved."""
    gone = {t.discussion_id for t in decided.resolve}
    kept = [Thread(t.discussion_id, t.mark, t.resolved or t.discussion_id in gone)
            for t in before]
    made = [Thread(f"d{len(kept) + i}", read_marker(marker(k)) or Mark(""), False)
            for i, k in enumerate(decided.keys)]
    return kept + made


def run(findings: list[PlacedFinding], file: FileDiff, before: list[Thread]
        ) -> tuple[Plan, list[Thread]]:
    decided = plan(findings, before, limit=100, enabled=True, files={file.path: file})
    return decided, threads_after(decided, before)


# --- anchors --------------------------------------------------------------------------------

def test_the_same_text_on_two_lines_is_two_anchors_counted_from_the_top() -> None:
    file = new_file(DB)
    assert lines(file).spot("new", 4) == identity.Spot("new", "conn = get_connection()", 1)
    assert lines(file).spot("new", 8) == identity.Spot("new", "conn = get_connection()", 2)

    first, second = found(file, 4), found(file, 8)

    assert key_of(first, file).anchor != key_of(second, file).anchor
    assert first.fingerprint != second.fingerprint
    assert not same(key_of(first, file), key_of(second, file))


def test_the_same_text_on_two_lines_gets_two_threads_and_both_count_as_inline() -> None:
    file = new_file(DB)
    findings = [found(file, 4, title="Connection never closed"),
                found(file, 8, title="Connection never closed")]

    decided, _ = run(findings, file, [])

    assert [f.line for f in decided.post] == [4, 8]
    assert decided.summary_only == ()
    assert decided.inline({f.fingerprint for f in decided.post}) == {
        f.fingerprint for f in findings}


def test_a_line_moved_by_lines_inserted_above_it_keeps_its_anchor() -> None:
    before = ["import db", "", "def load(user_id):", "    return 1", ""]
    first = diff_of(before, [*before[:3], "    conn = get_connection()", *before[4:]])
    later = diff_of(before, ["import db", "import log", "", "# loads a user", *before[2:3],
                             "    conn = get_connection()", *before[4:]])
    was, now = found(first, 4), found(later, 6)

    assert key_of(was, first) == key_of(now, later)
    assert was.fingerprint == now.fingerprint


def test_an_unrelated_line_with_the_same_text_below_does_not_move_the_anchor() -> None:
    once = new_file(DB[:5])
    twice = new_file(DB)

    assert key_of(found(once, 4), once) == key_of(found(twice, 4), twice)


def test_a_context_line_is_one_anchor_from_either_side_and_a_removed_twin_another() -> None:
    before = ["a = 1", "x = f()", "b = 2"]
    file = diff_of(before, ["x = f()", "a = 1", "x = f()", "b = 2"])
    by_new = found(file, 3)
    by_old = found(file, 2, side="old")
    added = found(file, 1)

    assert key_of(by_new, file) == key_of(by_old, file)
    assert key_of(added, file).anchor != key_of(by_new, file).anchor
    removed = parse_change(Change("db.py", "db.py", "@@ -1,2 +1,2 @@\n-x = f()\n y\n+x = f()\n"))
    assert key_of(found(removed, 1, side="old"), removed).anchor != \
        key_of(found(removed, 2), removed).anchor


# --- the same finding -----------------------------------------------------------------------

def test_the_issues_rewording_is_close_enough_and_its_plain_ratio_would_not_be() -> None:
    from rapidfuzz import fuzz, utils

    a, b = "SQL built from user input", "User input is concatenated into the SQL query"

    assert fuzz.ratio(a, b, processor=utils.default_process) < 40  # 31.4: ratio would split
    assert similarity(identity.normalise(a), identity.normalise(b)) >= identity.SIMILAR


# From the sample the threshold was chosen on (identity.SIMILAR): title and message each.
REWORDED = [
    (("Connection is never closed", "conn is never closed; use a with block around connect."),
     ("The connection is not closed", "Close conn, e.g. with `with connect(...) as conn:`.")),
    (("Off-by-one", "range(len(items) + 1) reads one past the end of items."),
     ("Loop goes past the end of the list", "The bound should be len(items), not len(items) + 1.")),
    (("Magic number", "3 should be a named constant."),
     ("Magic number 3 should be a named constant", "Give the retry count a name.")),
]
DIFFERENT_ON_ONE_LINE = [
    (("SQL injection", "user_id is concatenated into the query passed to cursor.execute."),
     ("SELECT * fetches every column", "SELECT * FROM users reads all columns.")),
    (("SQL injection", "user_id is concatenated into the query passed to cursor.execute."),
     ("Missing error handling", "cursor.execute may raise; the exception is not handled.")),
    (("Hard-coded database password", "The DSN passed to connect contains the password."),
     ("No connection timeout", "connect has no connect_timeout; a dead database hangs.")),
    (("Off-by-one", "range(len(items) + 1) reads one past the end of items."),
     ("Iterate directly", "Use `for item in items` instead of range(len(items)).")),
]


@pytest.mark.parametrize(("one", "other"), REWORDED)
def test_rewordings_that_keep_their_words_reach_the_threshold(
        one: tuple[str, str], other: tuple[str, str]) -> None:
    a, b = (identity.normalise(" ".join(w)) for w in (one, other))
    assert similarity(a, b) >= identity.SIMILAR


@pytest.mark.parametrize(("one", "other"), DIFFERENT_ON_ONE_LINE)
def test_different_problems_of_one_line_stay_below_the_threshold(
        one: tuple[str, str], other: tuple[str, str]) -> None:
    a, b = (identity.normalise(" ".join(w)) for w in (one, other))
    assert similarity(a, b) < identity.SIMILAR


@pytest.mark.parametrize(("a", "b"), [(0, 1), (0, 2), (1, 2)])
def test_one_finding_in_three_wordings_is_the_same_finding(a: int, b: int) -> None:
    file = new_file(DB)
    one, other = ruleless(file, QUERY, WORDINGS[a]), ruleless(file, QUERY, WORDINGS[b])

    assert same(key_of(one, file), key_of(other, file))


@pytest.mark.parametrize("wording", WORDINGS)
def test_a_style_point_and_an_injection_on_one_line_are_not_the_same(
        wording: tuple[str, str]) -> None:
    file = new_file(DB)
    injection = ruleless(file, QUERY, wording)
    style = ruleless(file, QUERY, STYLE, severity="minor")

    assert similarity(key_of(injection, file).words, key_of(style, file).words) < 50
    assert not same(key_of(injection, file), key_of(style, file))


def test_two_findings_on_one_line_under_two_rules_get_two_threads() -> None:
    file = new_file(DB)
    findings = [found(file, QUERY, rule="SEC-001", title="Injection"),
                found(file, QUERY, rule="COR-001", severity="minor", title="Injection")]

    decided, _ = run(findings, file, [])

    assert [f.rule for f in decided.post] == ["SEC-001", "COR-001"]


def test_two_problems_on_one_line_without_rules_get_two_threads_and_each_closes_alone(
        ) -> None:
    file = new_file(DB)
    injection = ruleless(file, QUERY, WORDINGS[0])
    style = ruleless(file, QUERY, STYLE, severity="minor")

    first, threads = run([injection, style], file, [])
    assert [f.title for f in first.post] == [WORDINGS[0][0], STYLE[0]]
    # The injection is fixed; the style point stays: only the injection's thread resolves.
    second, _ = run([style], file, threads)

    assert second.post == () and [f.title for f in second.known] == [STYLE[0]]
    assert [t.mark.words for t in second.resolve] == [key_of(injection, file).words]


def test_the_same_finding_twice_in_one_run_is_one_thread_for_both() -> None:
    file = new_file(DB)
    findings = [ruleless(file, QUERY, WORDINGS[0], severity="major"),
                ruleless(file, QUERY, WORDINGS[1], severity="critical")]

    decided, _ = run(findings, file, [])

    assert [f.title for f in decided.post] == [WORDINGS[1][0]]  # the most severe speaks
    assert decided.summary_only == ()
    assert decided.inline({decided.post[0].fingerprint}) == {f.fingerprint for f in findings}


def test_one_finding_reworded_over_three_runs_keeps_one_thread_never_resolved() -> None:
    file = new_file(DB)
    threads: list[Thread] = []
    for wording in WORDINGS:
        decided, threads = run([ruleless(file, QUERY, wording)], file, threads)
        assert decided.resolve == ()

    assert len(threads) == 1 and not threads[0].resolved


def test_a_reworded_finding_takes_its_own_thread_not_its_neighbours() -> None:
    file = new_file(DB)
    _, threads = run([ruleless(file, QUERY, WORDINGS[0]),
                      ruleless(file, QUERY, STYLE, severity="minor")], file, [])

    decided, after = run([ruleless(file, QUERY, ("Long line", "Over 100 characters long."),
                                   severity="minor"),
                          ruleless(file, QUERY, WORDINGS[2])], file, threads)

    assert decided.post == () and decided.resolve == ()
    assert len(after) == 2


def test_a_thread_a_person_resolved_is_neither_reposted_nor_resolved_again() -> None:
    file = new_file(DB)
    _, threads = run([ruleless(file, QUERY, WORDINGS[0])], file, [])
    resolved = [Thread(t.discussion_id, t.mark, True) for t in threads]

    decided, _ = run([ruleless(file, QUERY, WORDINGS[1])], file, resolved)

    assert decided.post == () and decided.resolve == ()
    assert [f.title for f in decided.known] == [WORDINGS[1][0]]


# --- the marker -----------------------------------------------------------------------------

def test_a_marker_reads_back_as_the_key_it_was_written_from() -> None:
    file = new_file(DB)
    k = key_of(ruleless(file, QUERY, WORDINGS[0]), file)

    mark = read_marker(marker(k) + "\n**critical** · **SQL built from user input**")

    assert mark == Mark(k.fingerprint, k.anchor, k.words)
    assert identity.match(k, mark) == 100.0


@pytest.mark.parametrize("title", [
    "--> <script>alert(1)</script> <!--", "/approve\n/merge", "@all ```", "ü" * 10_000,
    "a -- b --!> c", "\u2028\u0000x"])
def test_a_marker_holds_any_title_inert_and_bounded(title: str) -> None:
    f = Finding.model_validate(finding("db.py", 1, rule=None, title=title, message=title))
    k = key(f, None)

    text = marker(k)

    assert identity.MARKER_RE.fullmatch(text)
    assert text.count("-->") == 1 and text.endswith(" -->") and "\n" not in text
    assert text.count("--") == 2  # the comment's own "<!--" and "-->", nothing between
    assert len(text) < 3000
    assert read_marker(text) == Mark(k.fingerprint, k.anchor, k.words)


def test_a_garbled_marker_reads_without_error() -> None:
    assert read_marker("<!-- reviewer:finding v2 " + "a" * 16 + " " + "b" * 16 + " Q -->") == \
        Mark("a" * 16, "b" * 16, "")
    body = base64.b64encode(b"\xff\xfe").decode().rstrip("=")
    mark = read_marker(f"<!-- reviewer:finding v2 {'a' * 16} {'b' * 16} {body} -->")
    assert mark is not None and mark.anchor == "b" * 16
    assert read_marker("plain text <!-- reviewer:finding " + "a" * 16 + " -->") is None


# --- the marker written by the first version ------------------------------------------------

def v1_marker(rule: str | None, path: str, text: str) -> str:
    """The first line of an inline note as the version before this one wrote it."""
    return f"<!-- reviewer:finding {identity.legacy_fingerprint(rule, path, text)} -->"


def test_a_first_version_marker_reads_as_its_fingerprint() -> None:
    assert read_marker("<!-- reviewer:finding 0123456789abcdef -->\n**major**") == \
        Mark("0123456789abcdef")


def test_a_thread_of_the_first_version_is_recognised_and_not_posted_again() -> None:
    file = new_file(DB)
    f = found(file, QUERY, rule="SEC-001", title="Injection")
    text = "    return conn.query('SELECT * FROM users WHERE id = ' + user_id)"
    old = Thread("d0", read_marker(v1_marker("SEC-001", "db.py", text)) or Mark(""), False)

    decided, _ = run([f], file, [old])

    assert decided.post == () and decided.resolve == ()
    assert decided.known == (f,)


def test_a_first_version_thread_shared_by_two_problems_goes_to_the_most_severe() -> None:
    file = new_file(DB)
    text = DB[QUERY - 1]
    old = Thread("d0", read_marker(v1_marker(None, "db.py", text)) or Mark(""), False)
    findings = [ruleless(file, QUERY, STYLE, severity="minor"),
                ruleless(file, QUERY, WORDINGS[0])]

    decided, _ = run(findings, file, [old])

    assert [f.title for f in decided.known] == [WORDINGS[0][0]]
    assert [f.title for f in decided.post] == [STYLE[0]]
    assert decided.resolve == ()


def test_two_lines_of_the_same_text_under_a_first_version_thread_post_the_other_one() -> None:
    file = new_file(DB)
    old = Thread("d0", read_marker(v1_marker("COR-001", "db.py", DB[3])) or Mark(""), False)

    decided, _ = run([found(file, 4), found(file, 8)], file, [old])

    assert [f.line for f in decided.known] == [4]
    assert [f.line for f in decided.post] == [8]
