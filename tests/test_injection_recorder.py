"""The recorder the injection suite relies on sees what GitLab would act on, and no less."""

from __future__ import annotations

import pytest

from tests.gitlab_standin import FakeGitLab
from tests.quick_actions import Effect, column_zero_commands, mentions, quick_actions

ZWSP = "\u200b"


@pytest.mark.parametrize(("body", "expected"), [
    ("/close", [("close", "")]),
    ("Fine.\n/label ~bug ~\"big one\"\nmore", [("label", '~bug ~"big one"')]),
    ("/MERGE", [("merge", "")]),
    ("/approve   \n\n", [("approve", "")]),
    ("a\r\n/close\r\n", [("close", "")]),
    ("a\n\r/close", [("close", "")]),  # GitLab deletes every carriage return first
    ("a\n/clo\rse", [("close", "")]),
    ("/close\n/merge", [("close", ""), ("merge", "")]),
])
def test_quick_actions_are_found_where_gitlab_finds_them(
        body: str, expected: list[tuple[str, str]]) -> None:
    assert quick_actions(body) == expected


@pytest.mark.parametrize("body", [
    " /close", "\t/close", "a /close", f"{ZWSP}/close", "/close,", "/close\tnow", "//close",
    "```\n/close\n```", "```python\nx\n/merge\n```",
])
def test_quick_actions_are_not_found_where_gitlab_skips_them(body: str) -> None:
    assert quick_actions(body) == []


@pytest.mark.parametrize("body", [">>>\n/close\n>>>", "a `\n/close\nb `", "<p>\n/close\n</p>",
                                  "/close\n```\nx\n```"])
def test_quick_actions_that_only_some_gitlab_versions_skip_are_recorded(body: str) -> None:
    assert quick_actions(body) == [("close", "")]


def test_a_longer_fence_is_no_code_block_to_gitlab_past_an_inner_fence_line() -> None:
    # GitLab's code block ends at the first line of exactly three backticks.
    body = "````\n```\n/close\n````"

    assert quick_actions(body) == [("close", "")]
    assert column_zero_commands(body) == ["/close"]


def test_column_zero_commands_include_those_inside_code_blocks() -> None:
    assert column_zero_commands("```\n/close\n```\n/merge") == ["/close", "/merge"]


@pytest.mark.parametrize(("body", "expected"), [
    ("ping @all", ["all"]),
    ("@here and @jane.doe", ["here", "jane.doe"]),
    ("cc @group/sub-team", ["group/sub-team"]),
    ("é@all", ["all"]),  # Ruby's \w is ASCII: a letter like é does not protect the mention
    (" &#64;all", ["all"]),  # entities are decoded before GitLab looks
    ("[x](`)@all`", ["all"]),  # the link takes the backtick: no code span
    ("<details>\n@all\n</details>", ["all"]),
    ("| a |\n|---|\n| @all |", ["all"]),
    ("**@all**", ["all"]),
])
def test_mentions_are_found_where_gitlab_pings(body: str, expected: list[str]) -> None:
    assert mentions(body) == expected


@pytest.mark.parametrize("body", [
    "write to dev@example.com", f"@{ZWSP}all", "`@all`", "``a `@all` b``", "```\n@all\n```",
    "~~~\n@all\n~~~", "    @all in indented code", "x_@all",
])
def test_mentions_are_not_found_where_gitlab_does_not_ping(body: str) -> None:
    assert mentions(body) == []


def test_the_standin_records_what_each_created_or_edited_note_would_do(
        gitlab: FakeGitLab) -> None:
    project = gitlab.add_project("group/app")
    gitlab.add_merge_request(project["id"], iid=1, title="t", files=[])
    thread = gitlab.add_discussion(project["id"], 1, "hi @all\n/close", "someone")
    note_id = thread["notes"][0]["id"]

    assert gitlab.recorder.effects == [Effect(note_id, "action", "/close"),
                                       Effect(note_id, "mention", "@all")]
    assert gitlab.recorder.notes == 1
