"""Nothing skipped for size: hunks split into overlapping pieces with real numbers, long lines
clipped with a note, related files packed together; every changed line reaches some request."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from reviewer.chunk import OVERLAP, related
from reviewer.diff import Change, FileDiff, LineKind, parse_change
from reviewer.model import answer_schema
from reviewer.prompt import (
    CHARS_PER_TOKEN,
    Context,
    Request,
    build,
    number_lines,
    with_schema,
)
from reviewer.spec import Spec

TAG = "mr-data-5eed1234"
CTX = Context("Split", "")
NO_RULES = Spec("test", None, None, ())
SCHEMA_CHARS = len(with_schema(answer_schema()))
HEADER = re.compile(r"^@@ -(\d+),(\d+) \+(\d+),(\d+) @@$")

Row = tuple[int | None, int | None, str, str]  # old, new, sign, text


def diff_of(path: str, text: str, **flags: bool) -> FileDiff:
    return parse_change(Change(path, path, text, **flags))


def added_file(path: str, lines: int) -> FileDiff:
    body = "".join(f"+{path} {n}\n" for n in range(1, lines + 1))
    return diff_of(path, f"@@ -0,0 +1,{lines} @@\n{body}", new_file=True)


def mixed_hunk(lines: int) -> FileDiff:
    """One modified hunk from line 50: context, removed and added lines in turn."""
    body, old, new = [], 0, 0
    for n in range(lines):
        sign = " -+"[n % 3]
        body.append(f"{sign}line {n} of the one big hunk " + "z" * (n % 17) + "\n")
        old += sign != "+"
        new += sign != "-"
    return diff_of("src/big.py", f"@@ -50,{old} +50,{new} @@\n{''.join(body)}")


def user_of(request: Request) -> str:
    return request.messages[1][1]


def fixed_chars() -> int:
    """What a request costs besides its files, schema included, measured from outside."""
    requests, _ = build([added_file("tiny.txt", 1)], NO_RULES, CTX, 1_000_000, TAG)
    return requests[0].chars - len("File: tiny.txt (added)\n@@ -0,0 +1,1 @@\n"
                                   "          1 + tiny.txt 1\n") + SCHEMA_CHARS


def budget_for(diff_chars: int) -> int:
    return (fixed_chars() + diff_chars) // CHARS_PER_TOKEN


def pieces(requests: list[Request], path: str) -> list[tuple[str, list[Row]]]:
    """Every piece of path's diff sent, in order: its hunk header and its parsed rows."""
    found: list[tuple[str, list[Row]]] = []
    for request in requests:
        lines = user_of(request).split("\n")
        for i, line in enumerate(lines):
            if not line.startswith(f"File: {path} ("):
                continue
            for text in lines[i + 1:]:
                if not text or text.startswith(("File: ", f"</{TAG}>")):
                    break
                if text.startswith("@@ "):  # a file sent whole has all its hunks here
                    found.append((text, []))
                else:
                    found[-1][1].append((int(text[:5]) if text[:5].strip() else None,
                                         int(text[6:11]) if text[6:11].strip() else None,
                                         text[12], text[14:]))
    return found


def assert_within_budget(requests: list[Request], budget: int) -> None:
    for request in requests:
        assert request.chars + SCHEMA_CHARS <= budget * CHARS_PER_TOKEN, request.files


def test_a_hunk_three_times_the_budget_is_split_into_overlapping_pieces_with_real_numbers(
) -> None:
    big = mixed_hunk(240)
    hunk = big.hunks[0]
    budget = budget_for(len(number_lines(hunk)) // 3)
    requests, skipped = build([big], NO_RULES, CTX, budget, TAG)
    assert skipped == []
    assert_within_budget(requests, budget)
    sent = pieces(requests, "src/big.py")
    assert len(sent) >= 3
    expected = [(ln.old, ln.new, {"added": "+", "removed": "-", "context": " "}[ln.kind],
                 ln.text) for ln in hunk.lines]
    position = 0
    for n, (header, rows) in enumerate(sent):
        start = expected.index(rows[0], max(position - OVERLAP, 0))
        assert rows == expected[start:start + len(rows)]  # real numbers, nothing left out
        if n:
            assert start == position - OVERLAP  # repeats the last lines of the piece before
        position = start + len(rows)
        olds = [r[0] for r in rows if r[0] is not None]
        news = [r[1] for r in rows if r[1] is not None]
        match = HEADER.match(header)
        assert match, header
        assert (int(match[1]), int(match[2])) == (olds[0], len(olds))
        assert (int(match[3]), int(match[4])) == (news[0], len(news))
    assert position == len(expected)  # through the last line
    text = "\n".join(user_of(r) for r in requests)
    for i in range(1, len(sent) + 1):
        assert f"File: src/big.py (modified) [part {i} of {len(sent)}]\n" in text
    # A finding on any line lands on a line the model saw, and that line is in the diff.
    for line in hunk.lines:
        side, number = ("old", line.old) if line.kind == LineKind.REMOVED else ("new", line.new)
        assert number is not None and big.line_at(side, number) == line
        assert any(line.text in user_of(r) for r in requests)


def test_pieces_of_an_added_block_number_from_where_they_start() -> None:
    big = added_file("src/new.py", 300)
    budget = budget_for(1500)
    requests, skipped = build([big], NO_RULES, CTX, budget, TAG)
    assert skipped == []
    for header, rows in pieces(requests, "src/new.py"):
        first = rows[0][1]
        assert header == f"@@ -0,0 +{first},{len(rows)} @@"


def test_a_one_megabyte_line_is_clipped_with_a_note_and_the_file_still_reviewed() -> None:
    line = "y" * 1_000_000
    big = diff_of("src/min.js", f"@@ -1,2 +1,2 @@\n-old\n+{line}\n ok\n")
    small = added_file("src/small.py", 3)
    budget = 6000
    requests, skipped = build([big, small], NO_RULES, CTX, budget, TAG)
    assert skipped == []
    assert_within_budget(requests, budget)
    text = "\n".join(user_of(r) for r in requests)
    assert "… [line clipped: 1000000 characters]" in text
    rows = [row for _, piece in pieces(requests, "src/min.js") for row in piece]
    assert (1, None, "-", "old") in rows
    assert (2, 2, " ", "ok") in rows
    clipped = [r for r in rows if r[2] == "+"]
    assert clipped and clipped[0][1] == 1 and clipped[0][3].startswith("y" * 100)
    assert any("src/min.js" in r.files for r in requests)


def test_a_module_and_its_test_share_a_request_when_they_fit() -> None:
    files = [added_file(p, 20) for p in ("app/user.py", "lib/a.py", "lib/b.py", "lib/c.py",
                                          "tests/test_user.py")]
    per_file = len(user_of(build(files[:1], NO_RULES, CTX, 1_000_000, TAG)[0][0]))
    budget = budget_for(per_file * 2)  # about two files a request, not three
    requests, skipped = build(files, NO_RULES, CTX, budget, TAG)
    assert skipped == []
    assert_within_budget(requests, budget)
    assert ("app/user.py", "tests/test_user.py") in [r.files for r in requests]
    assert sorted(p for r in requests for p in r.files) == sorted(f.path for f in files)


def test_related_files_are_grouped_by_folder_with_tests_beside_their_modules() -> None:
    paths = ["web/z.ts", "tests/test_user.py", "app/zeta.py", "app/user.py",
             "web/user.test.ts", "web/user.ts", "go/store_test.go", "go/store.go"]
    groups = related([added_file(p, 1) for p in paths])
    assert [[f.path for f in g] for g in groups] == [
        ["app/user.py", "tests/test_user.py"], ["app/zeta.py"],
        ["go/store.go", "go/store_test.go"], ["web/user.ts", "web/user.test.ts"], ["web/z.ts"]]


def test_the_order_does_not_depend_on_the_order_files_come_in() -> None:
    files = [added_file(f"d{i % 3}/m{i}.py", 5) for i in range(9)]
    budget = budget_for(700)
    first = build(files, NO_RULES, CTX, budget, TAG)[0]
    again = build(files[::-1], NO_RULES, CTX, budget, TAG)[0]
    assert [r.messages for r in first] == [r.messages for r in again]


TEXT = st.one_of(st.text("abc xyz<>|[]", max_size=300),
                 st.builds(str.__mul__, st.sampled_from("q<|"), st.integers(2000, 9000)))
LINE = st.tuples(st.sampled_from(" -+"), TEXT)  # now and then a line longer than a request


@st.composite
def change(draw: st.DrawFn, index: int) -> FileDiff:
    hunks, old, new = [], 1, 1
    for _ in range(draw(st.integers(1, 3))):
        lines = draw(st.lists(LINE, min_size=1, max_size=60))
        olds = sum(s != "+" for s, _ in lines)
        news = sum(s != "-" for s, _ in lines)
        body = "".join(f"{s}{t}\n" for s, t in lines)
        hunks.append(f"@@ -{old},{olds} +{new},{news} @@\n{body}")
        gap = draw(st.integers(1, 50))  # unchanged lines between hunks
        old, new = old + olds + gap, new + news + gap
    return diff_of(f"d{index % 2}/f{index}.py", "".join(hunks))


@settings(max_examples=100, deadline=None)
@given(st.data(), st.integers(0, 4000))
def test_every_changed_line_reaches_a_request_within_the_budget(data: st.DataObject,
                                                                extra: int) -> None:
    files = [data.draw(change(i)) for i in range(data.draw(st.integers(1, 4)))]
    budget = budget_for(700 + extra)
    requests, skipped = build(files, NO_RULES, CTX, budget, TAG)
    assert skipped == []
    assert_within_budget(requests, budget)
    for file in files:
        rows = {(r[0], r[1]) for _, piece in pieces(requests, file.path) for r in piece}
        for hunk in file.hunks:
            for line in hunk.lines:
                assert (line.old, line.new) in rows, (file.path, line)
        holders = [r for r in requests if file.path in r.files]
        assert holders and all(f"File: {file.path} (" in user_of(r) for r in holders)
