"""The state a review leaves for the next run, and what an incremental run asks about (pure)."""

from __future__ import annotations

import base64
import re
import secrets
import zlib

import pytest

from reviewer import rerun, state
from reviewer.config import Settings
from reviewer.diff import Change, parse_change
from reviewer.model import MergeRequestInfo, PlacedFinding, Rerun
from reviewer.render import summary_note
from tests.conftest import review_of
from tests.quick_actions import Recorder

MR = MergeRequestInfo(project="g/p", iid=1, web_url="https://x/g/p/-/merge_requests/1",
                      title="t", source_branch="f", target_branch="main", base_sha="b" * 40,
                      start_sha="b" * 40, head_sha="c" * 40)
HOSTILE = "--> \n/approve\n/merge @all <!-- `x` ```"


def placed(path: str, line: int, title: str = "Problem", message: str = "Fix it.",
           fingerprint: str = "f" * 16) -> PlacedFinding:
    return PlacedFinding(path=path, line=line, severity="major", rule="COR-001", title=title,
                         message=message, placed=True, fingerprint=fingerprint)


def new_file(path: str, lines: list[str]) -> Change:
    body = "".join(f"+{ln}\n" for ln in lines)
    return Change(path, path, f"@@ -0,0 +1,{len(lines)} @@\n{body}", new_file=True)


def test_the_state_round_trips_and_model_text_cannot_leave_its_comment() -> None:
    review = review_of([placed("app.py", 2, title=HOSTILE, message=HOSTILE)],
                       merge_request=MR, summary=HOSTILE)
    line = state.block(review, ["a" * 16])

    assert re.fullmatch(r"<!-- reviewer:state v1 [A-Za-z0-9+/=]+ -->", line)
    back = state.read(summary_note(review, state=line))
    assert back is not None and back.head_sha == "c" * 40 and back.anchors == ["a" * 16]
    assert back.findings[0].title == HOSTILE and back.summary == HOSTILE
    recorder = Recorder()
    recorder.note(1, line)
    assert not recorder.actions and not recorder.mentions


def test_a_note_without_state_has_none_and_a_damaged_one_says_so() -> None:
    assert state.read("<!-- reviewer:summary -->\n## Review") is None
    with pytest.raises(state.StateError, match="damaged"):
        state.read("<!-- reviewer:state v1 AAAA -->")
    with pytest.raises(state.StateError, match="format"):
        state.read("<!-- reviewer:state v9 AAAA -->")
    bomb = base64.b64encode(zlib.compress(b"{" * (state.MAX_JSON_BYTES + 10))).decode()
    with pytest.raises(state.StateError, match="larger"):
        state.read(f"<!-- reviewer:state v1 {bomb} -->")


def test_a_state_too_large_for_a_note_is_left_out() -> None:
    noise = [placed("app.py", n, title=secrets.token_hex(4500)) for n in range(1, 200)]
    assert state.block(review_of(noise, merge_request=MR)) == ""


def test_only_files_changed_since_or_not_covered_go_to_the_model() -> None:
    files = [parse_change(new_file(p, ["x = 1", "y = 2"])) for p in ("a.py", "b.py", "c.py")]
    earlier = state.State(head_sha="1" * 40, base_sha="b" * 40, model="m", rules=[],
                          files=["a.py", "b.py"], findings=[placed("b.py", 2)], score=60,
                          anchors=["z" * 16])
    since = [Change("a.py", "a.py", "@@ -1,2 +1,2 @@\n x = 1\n-y = 2\n+y = 3\n")]

    split = rerun.split(files, earlier, since)

    assert [f.path for f in split.review] == ["a.py", "c.py"]  # changed; not covered before
    assert list(split.carried) == ["b.py"]
    assert [(f.path, f.line, f.placed) for f in split.findings] == [("b.py", 2, True)]
    assert split.rerun == Rerun(mode="incremental", since_sha="1" * 40,
                                files_carried_over=["b.py"], findings_carried_over=1)


def test_a_finding_whose_line_the_push_rewrote_counts_as_fixed() -> None:
    earlier = state.State(head_sha="1" * 40, base_sha="b" * 40, model="m", rules=[],
                          files=["a.py"], findings=[placed("a.py", 2), placed("a.py", 1)],
                          anchors=["two", "one"])
    since = [Change("a.py", "a.py", "@@ -1,2 +1,2 @@\n x = 1\n-y = 2\n+y = 3\n")]
    assert rerun.touched(earlier, since) == {"two"}


def test_why_a_full_review() -> None:
    earlier = state.State(head_sha="1" * 40, base_sha="b" * 40, model="m", rules=["R"],
                          files=[], findings=[])
    assert "force-push" in rerun.not_in_history(earlier, "b" * 40)
    assert "rebase onto the moved target branch" in rerun.not_in_history(earlier, "d" * 40)
    assert rerun.start_over(earlier, "m", ["R"], None) is None
    assert "model changed" in str(rerun.start_over(earlier, "other", ["R"], None))
    assert "rules changed" in str(rerun.start_over(earlier, "m", ["R", "S"], None))


@pytest.mark.parametrize(("env", "flag", "on"), [
    ({}, None, False), ({"CI": "true"}, None, True), ({"CI": "true"}, False, False),
    ({}, True, True), ({"REVIEWER_INCREMENTAL": "true"}, None, True)])
def test_incremental_is_on_in_ci_unless_full(monkeypatch: pytest.MonkeyPatch,
                                             env: dict[str, str], flag: bool | None,
                                             on: bool) -> None:
    for name in ("CI", "GITLAB_CI", "REVIEWER_INCREMENTAL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    given = {} if flag is None else {"REVIEWER_INCREMENTAL": flag}
    assert Settings(**given).incremental_on is on
