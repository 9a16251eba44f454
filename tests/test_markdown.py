"""Untrusted text made inert for GitLab notes: quick actions, mentions, HTML, fences, code."""

from __future__ import annotations

import re

import pytest

from reviewer.markdown import ZWSP, cell, clip, code, fence, inert

# GitLab runs a quick action written at the start of a line, its name in any case
# (lib/gitlab/quick_actions/extractor.rb: ^\/ and Regexp::IGNORECASE).
GITLAB_QUICK_ACTION = re.compile(r"^/[a-z_]+", re.MULTILINE | re.IGNORECASE)


# --- inert ----------------------------------------------------------------------------------

@pytest.mark.parametrize("text", [
    "/close", "/merge", "  /approve", "\t/label ~bug", "fine\n/close", "fine\n   /unassign @me",
    "first\n\n/Close",
])
def test_inert_neutralises_a_quick_action_at_the_start_of_any_line(text: str) -> None:
    result = inert(text)

    assert not GITLAB_QUICK_ACTION.search(result.replace(" ", "").replace("\t", ""))
    assert result.replace(ZWSP, "") == text


@pytest.mark.parametrize(("text", "expected"), [
    ("ping @all now", f"ping @{ZWSP}all now"),
    ("@here look", f"@{ZWSP}here look"),
    ("ask (@jane.doe)", f"ask (@{ZWSP}jane.doe)"),
    ("cc @group/sub-team", f"cc @{ZWSP}group/sub-team"),
])
def test_inert_breaks_mentions(text: str, expected: str) -> None:
    assert inert(text) == expected


@pytest.mark.parametrize("text", [
    "write to dev@example.com", "a@b.c", "pip install pkg@1.2", "a slash/in the middle",
    "x < y and y > z", "if a<=b", "path/to/file.py",
])
def test_inert_keeps_email_addresses_code_and_comparisons(text: str) -> None:
    assert inert(text) == text


@pytest.mark.parametrize(("text", "expected"), [
    ("<script>alert(1)</script>", "&lt;script>alert(1)&lt;/script>"),
    ("<img src=x onerror=alert(1)>", "&lt;img src=x onerror=alert(1)>"),
    ("<!-- reviewer:summary -->", "&lt;!-- reviewer:summary -->"),
    ("close </details> early", "close &lt;/details> early"),
])
def test_inert_escapes_html_tags(text: str, expected: str) -> None:
    assert inert(text) == expected


# --- fence and cell -------------------------------------------------------------------------

@pytest.mark.parametrize(("body", "ticks"), [
    ("plain code", 3),
    ("a `b` c", 3),
    ("```python\nx = 1\n```", 4),
    ("````\nnested\n````", 5),
    ("inline `````` run", 7),
])
def test_fence_is_longer_than_any_backtick_run_in_the_body(body: str, ticks: int) -> None:
    block = fence(body, "py")

    lines = block.split("\n")
    assert lines[0] == "`" * ticks + "py"
    assert lines[-1] == "`" * ticks
    assert "\n".join(lines[1:-1]) == body


@pytest.mark.parametrize("command", ["/close", "/merge", "/label ~x", "/Close", "/MERGE"])
def test_fence_neutralises_quick_action_lines_inside_it(command: str) -> None:
    body = f"x = 1\n{command}\ny = 2"

    block = fence(body)

    assert not GITLAB_QUICK_ACTION.search(block)
    assert block.replace(ZWSP, "") == f"```\n{body}\n```"


def test_cell_escapes_pipes_and_joins_lines() -> None:
    assert cell("a | b\nc\r\n  d") == "a \\| b c d"


def test_cell_is_inert() -> None:
    assert cell("/close @all <b>") == f"{ZWSP}/close @{ZWSP}all &lt;b>"


def test_mentions_inside_closed_code_spans_stay_as_written() -> None:
    assert inert("use `@property` or ``@dataclass``") == "use `@property` or ``@dataclass``"


def test_an_unclosed_backtick_does_not_protect_a_mention() -> None:
    # A backtick that closes nothing is shown as an entity, so it cannot pair with one later.
    assert inert("ping `@all now") == f"ping &#96;@{ZWSP}all now"
    assert inert("`a` then @here and `@ok`") == f"`a` then @{ZWSP}here and `@ok`"


# --- HTML only outside code (GitLab shows code literally) ---------------------------------------

@pytest.mark.parametrize("text", [
    "Return `List<Order>` here", "Use `Map<String, Integer>` instead",
    "a ``Vec<Box<dyn T>>`` b", "`<script>` is fine in code",
])
def test_code_spans_keep_angle_brackets_as_written(text: str) -> None:
    assert inert(text) == text


def test_html_outside_code_spans_is_still_escaped_beside_them() -> None:
    assert inert("`List<Order>` and <b>bold</b>") == "`List<Order>` and &lt;b>bold&lt;/b>"


def test_a_closed_code_block_keeps_its_code_and_language() -> None:
    text = ("Fix it:\n```java\nList<Order> xs = new ArrayList<>();\nif (a < b) { run(); }\n"
            "```\nDone.")

    assert inert(text) == text


def test_a_code_block_cannot_hide_a_quick_action_or_close_our_fence() -> None:
    text = "See:\n````\nx = 1\n/merge\n```\nstill code\n````\n@all <b>\n/close"

    result = inert(text)

    assert not GITLAB_QUICK_ACTION.search(result)
    assert "@all" not in result and "<b>" not in result
    assert result.splitlines()[1] == "````"  # longer than the ``` run inside
    assert result.replace(ZWSP, "").splitlines()[2:6] == ["x = 1", "/merge", "```", "still code"]


@pytest.mark.parametrize("info", ["suggestion:-0+0", "suggestion", "mermaid", "math",
                                  "plantuml", "<img>", "a\"b"])
def test_a_code_block_loses_an_info_string_that_gives_it_powers(info: str) -> None:
    result = inert(f"Try:\n```{info}\nx = 1\n```\n")

    assert "```\nx = 1\n```" in result
    assert info not in result


def test_a_code_block_keeps_only_the_first_word_of_its_info_string() -> None:
    assert inert("```js onload=x\nx = 1\n```").startswith("```js\n")


def test_an_unclosed_code_block_is_prose_and_cannot_swallow_the_note() -> None:
    result = inert("Try:\n```python\nList<Order> x\n@all")

    assert "&#96;&#96;&#96;python" in result  # shown as written, and no fence
    assert "&lt;Order>" in result and f"@{ZWSP}all" in result


@pytest.mark.parametrize(("text", "span"), [
    ("src/app.py:3", "`src/app.py:3`"),
    ("a`b.py", "``a`b.py``"),
    ("`x`", "`` `x` ``"),
    ("<img src=x>.py", "`<img src=x>.py`"),
])
def test_code_makes_one_span_nothing_inside_can_close(text: str, span: str) -> None:
    assert code(text) == span


def test_code_in_a_table_escapes_pipes() -> None:
    assert code("a|b.py", in_table=True) == "`a\\|b.py`"


def test_clip_keeps_short_text_and_marks_a_cut() -> None:
    assert clip("short", 10) == "short"
    cut = clip("x" * 50, 10)
    assert cut.startswith("x" * 10) and "review.json" in cut and len(cut) < 80
