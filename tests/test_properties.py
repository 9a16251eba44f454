"""Property tests: the parsers of untrusted input never fail but with our own errors, and the
note rendering never leaves GitLab a quick action, a mention or raw HTML, whatever the input.

Inputs are drawn from an alphabet rich in what matters here (Markdown and diff syntax, line
ends GitLab and Python read differently, role tokens) mixed with arbitrary text. The "ci"
profile is deterministic and modest; REVIEWER_HYPOTHESIS=explore runs many more examples.
"""

from __future__ import annotations

import contextlib
import json
import os
import re

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from reviewer import answer, gitpatch
from reviewer.diff import Change, parse_change, split_patch
from reviewer.errors import ReviewerError
from reviewer.identity import key
from reviewer.markdown import ZWSP, cell, code, fence, inert
from reviewer.model import (
    SEVERITIES,
    Coverage,
    ModelAnswer,
    ModelInfo,
    NotReviewed,
    PlacedFinding,
    SkippedFile,
)
from reviewer.prompt import Context, build
from reviewer.render import FINDING_ID, MARKER, finding_note, summary_note
from reviewer.spec import Spec
from tests.conftest import note_json, review_of
from tests.quick_actions import (
    column_zero_commands,
    mentions,
    quick_actions,
    raw_html,
    rendered,
    table_rows,
)

settings.register_profile("ci", max_examples=150, deadline=None, derandomize=True,
                          database=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("explore", max_examples=5000, deadline=None, database=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("REVIEWER_HYPOTHESIS", "ci"))

PIECES = ["/", "/close", "/merge", "@", "@all", "@here", "`", "``", "```", "~~~", "|", "\\", "<",
          ">", "<img src=x onerror=alert(1)>", "</details>", "<!--", "-->", "&", "&#64;", ";",
          "[", "]", "(", ")", "](", "!", "*", "_", "#", " ", "    ", "\t", "\n", "\r", "\r\n",
          "\x00", "\x0b", "\x0c", "\x85", "\u2028", ZWSP, "é", "a", "Z", "0", ":", "-", "+",
          "<|im_start|>", "</mr-data-5eed1234>", ">>>", "\ufeff", "\ud800", '"', '\\"', "a/",
          "b/", "\\303"]
hostile_text = st.one_of(st.lists(st.sampled_from(PIECES), max_size=40).map("".join),
                         st.text(max_size=60))
DIFF_LINES = ["@@ -1 +1 @@", "@@ -1,2 +1,3 @@", "@@ -0,0 +1 @@", "@@ -5,0 +6,2 @@ def f():",
              "@@ -a +b @@", "@@ -99999999999999999999 +1 @@", "+", "-", " ", "+x", "-y", " z",
              "\\ No newline at end of file", "diff --git a/x b/x", "--- a/x", "+++ b/x",
              "--- /dev/null", "+++ /dev/null", "new file mode 100644", "deleted file mode 100644",
              "old mode 100644", "new mode 100755", "rename from a", "rename to b",
              "copy from \"a\\303\\274\"", "copy to \"b", "index 1a2b..3c4d 100644",
              "Binary files a/x and b/x differ", "GIT binary patch", "Subproject commit 1234567",
              'diff --git "a/q\\"x" "b/q\\"x"', "diff --git a/a b/b c", "+@@ -1 +1 @@"]
HEADERS = ["diff --git ", "rename from ", "rename to ", "copy from ", "--- ", "+++ "]
header_line = st.tuples(st.sampled_from(HEADERS), hostile_text).map("".join)
diff_text = st.lists(st.one_of(st.sampled_from(DIFF_LINES), header_line, hostile_text),
                     max_size=30).map("\n".join)
NO_RULES = Spec("test", None, None, ())


# --- diff parsing ----------------------------------------------------------------------------

@given(diff_text, st.booleans(), st.booleans(), hostile_text)
def test_parse_change_raises_nothing_but_a_reviewer_error(text: str, new: bool, deleted: bool,
                                                          path: str) -> None:
    try:
        parsed = parse_change(Change(path, path, text, new_file=new, deleted_file=deleted))
    except ReviewerError:
        return
    for hunk in parsed.hunks:
        for line in hunk.lines:
            assert "\n" not in line.text


@given(st.one_of(diff_text, diff_text.map(lambda t: "diff --git a/f b/f\n" + t)))
@example('diff --git 0"')  # found: a quote at the end but no quoted name raised ValueError
def test_split_patch_raises_nothing_but_a_reviewer_error(text: str) -> None:
    try:
        changes = split_patch(text.encode("utf-8", "surrogatepass"))
    except ReviewerError:
        return
    for change in changes:  # and what it splits parses the same way
        with contextlib.suppress(ReviewerError):
            parse_change(change)


@given(st.one_of(st.binary(max_size=300),
                 diff_text.map(lambda t: ("diff --git a/f b/f\n" + t).encode("utf-8",
                                                                             "surrogatepass"))))
@example(b'diff --git \x00"')
def test_gitpatch_sections_never_raise_and_name_every_section(data: bytes) -> None:
    sections = gitpatch.sections(data)

    assert len(sections) <= data.count(b"diff --git ")
    for section in sections:
        assert isinstance(section.old_path, str) and isinstance(section.new_path, str)


@given(st.binary(max_size=200))
def test_gitpatch_unquote_never_raises(data: bytes) -> None:
    name, rest = gitpatch.unquote(b'"' + data)
    assert isinstance(name, bytes) and isinstance(rest, bytes)


# --- the prompt ------------------------------------------------------------------------------

@given(diff_text, hostile_text, hostile_text, hostile_text)
def test_the_prompts_data_block_always_ends_with_our_one_closing_marker(
        text: str, path: str, title: str, description: str) -> None:
    tag = "mr-data-5eed1234"
    try:
        file = parse_change(Change(path, path, text))
    except ReviewerError:
        return
    requests, _ = build([file], NO_RULES, Context(title, description), 100_000, tag)
    for request in requests:
        user = request.messages[1][1]
        assert user.startswith(f"The data marker is {tag}.\n")
        assert user.lower().count(tag) == 3  # named once, then our two markers, no other
        assert user.endswith(f"</{tag}>\n\nAnswer with the JSON object only.")
        assert "<|im_start|>" not in user


# --- model output ----------------------------------------------------------------------------

json_like = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), hostile_text),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.sampled_from(
                                ["score", "verdict", "summary", "findings", "path", "line",
                                 "severity", "title", "message", "side", "end_line", "rule",
                                 "suggestion", "x"]), inner, max_size=6)),
    max_leaves=20)
replies = st.one_of(
    hostile_text,
    json_like.map(lambda v: json.dumps(v)),
    st.tuples(hostile_text, json_like, hostile_text).map(
        lambda t: f"{t[0]}<think>{t[0]}</think>```json\n{json.dumps(t[1])}\n```"
                  f"{t[2]}"),
    st.sampled_from(["{" * 5000, "[" * 5000 + "]" * 5000, '{"score": 1e999}',
                     '{"score": NaN}', '{"a": "\\ud800"}', "</think>{}"]),
)


@given(replies)
def test_parse_answer_raises_nothing_but_value_error(text: str) -> None:
    try:
        parsed = answer.parse_answer(text)
    except ValueError:
        return
    assert isinstance(parsed, ModelAnswer)
    parsed.model_dump_json()  # what was accepted can be written out (no lone surrogate)


@given(st.lists(st.tuples(st.sampled_from(["content", "reasoning_content", "reasoning"]),
                          st.one_of(st.none(), replies)), max_size=3))
def test_locate_and_holds_json_never_raise(fields: list[tuple[str, str | None]]) -> None:
    name, text = answer.locate(fields)
    assert isinstance(name, str) and isinstance(text, str)
    answer.holds_json(text)


# --- note rendering --------------------------------------------------------------------------

def assert_inert(note: str) -> None:
    assert column_zero_commands(note) == [] and quick_actions(note) == []
    assert mentions(note) == []


@given(hostile_text)
def test_inert_text_leaves_gitlab_nothing_to_run_notify_or_render_as_html(text: str) -> None:
    for note in (inert(text), f"Intro:\n\n{inert(text)}\n\nAfter.", f"**{inert(text)}**"):
        assert_inert(note)
        assert raw_html(note) == []


@given(hostile_text, hostile_text)
def test_two_inert_fields_side_by_side_leave_nothing_either(first: str, second: str) -> None:
    assert_inert(f"{inert(first)} {code(second)} {cell(first)} {inert(second)}")


@given(hostile_text)
def test_a_cell_keeps_a_table_row_at_its_columns(text: str) -> None:
    table = f"| a | b | c |\n|---|---|---|\n| {cell(text)} | {code(text, in_table=True)} | x |"

    assert_inert(table)
    assert raw_html(table) == []
    assert table_rows(table) == [3, 3]


@given(hostile_text)
def test_code_is_one_span_showing_the_text_on_one_line(text: str) -> None:
    shown = " ".join(text.replace("\r", "\n").replace("\x00", "\ufffd").split())
    html = rendered(f"a {code(text)} b")

    assert_inert(f"a {code(text)} b")
    if shown.strip():
        spans = re.findall(r"<code>(.*?)</code>", html, re.DOTALL)
        assert len(spans) == 1


@given(hostile_text, st.sampled_from(["", "py", "json"]))
def test_fence_is_one_code_block_nothing_inside_can_close(body: str, lang: str) -> None:
    block = fence(body, lang)
    note = f"Before\n\n{block}\n\nAfter @{ZWSP}x"

    assert_inert(note)
    html = rendered(note)
    assert html.count("<pre>") == 1 and html.rstrip().endswith("</p>")


# A review holds valid Unicode: every entrance cleans lone surrogates (answer.clean_text,
# text.clean), and review.json could not be written otherwise.
review_text = hostile_text.map(lambda text: answer.SURROGATE.sub("\ufffd", text))
findings = st.builds(
    PlacedFinding, path=review_text, line=st.integers(0, 10**9),
    side=st.sampled_from(["new", "old"]),
    end_line=st.one_of(st.none(), st.integers(0, 10**9)), severity=st.sampled_from(SEVERITIES),
    rule=st.one_of(st.none(), review_text), title=review_text, message=review_text,
    suggestion=st.one_of(st.none(), review_text), placed=st.booleans(),
    fingerprint=st.text("0123456789abcdef", min_size=16, max_size=16), in_change=st.booleans())
OURS = {MARKER, "<details><summary>Findings in detail</summary>",
        "<details><summary>Review JSON</summary>", "</details>", "<sub>", "</sub>"}


@given(st.lists(findings, max_size=4), review_text, review_text, review_text, review_text)
def test_a_summary_note_of_any_review_leaves_gitlab_nothing_but_to_show_it(
        found: list[PlacedFinding], summary: str, name: str, skipped: str, missing: str) -> None:
    review = review_of(found, summary=summary, model=ModelInfo(name=name, host=name),
                       skipped_files=[SkippedFile(path=skipped, reason=missing)],
                       coverage=Coverage(files_not_reviewed=1,
                                         not_reviewed=[NotReviewed(path=missing, reason=skipped)]))

    note = summary_note(review)

    assert_inert(note)
    assert [h for h in raw_html(note) if h not in OURS] == []
    assert note_json(note) == review  # no fence was closed early


@given(findings, st.one_of(st.none(), st.tuples(st.integers(0, 100), review_text)))
def test_a_finding_note_of_any_finding_leaves_gitlab_nothing_but_to_show_it(
        finding: PlacedFinding, suggestion: tuple[int, str] | None) -> None:
    note = finding_note(finding, suggestion, key(finding, None))

    assert_inert(note)
    assert [h for h in raw_html(note) if not FINDING_ID.fullmatch(h)] == []
