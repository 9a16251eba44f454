"""Model answers as real servers send them: JSON first, wrappers second, wherever the answer is."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from reviewer.answer import parse_answer
from reviewer.model import ModelAnswer
from reviewer.prompt import Request
from tests.conftest import answer, finding
from tests.openai_standin import FakeOpenAI, Reply
from tests.test_llm import BAD_JSON, client_for, make_repo, review_cli, review_request

CODE = "```python\ndef handler(event):\n    return {\"status\": 200, \"body\": {}}\n```"
WITH_CODE = answer(score=58, verdict="request_changes", findings=[finding(
    "src/app.py", 4, message=f"Return early instead:\n{CODE}\nand log {{}} on failure.",
    suggestion="if not y:\n    return {}\n")])


@pytest.fixture
def request_() -> Request:
    return review_request()


def reviewed(llm: FakeOpenAI, request: Request, *replies: Reply | str) -> ModelAnswer:
    llm.queue(*replies)
    return client_for(llm.url).review(request)


# --- JSON first --------------------------------------------------------------------------------

def test_valid_answer_with_fenced_code_in_a_message_is_accepted_first_time(
        llm: FakeOpenAI, request_: Request) -> None:
    result = reviewed(llm, request_, WITH_CODE)
    assert result == ModelAnswer.model_validate_json(WITH_CODE)
    assert CODE in result.findings[0].message
    assert len(llm.requests) == 1  # no repair request


def test_fenced_answer_whose_message_holds_a_fence_is_accepted(
        llm: FakeOpenAI, request_: Request) -> None:
    result = reviewed(llm, request_, f"```json\n{WITH_CODE}\n```")
    assert result == ModelAnswer.model_validate_json(WITH_CODE)
    assert len(llm.requests) == 1


def test_fenced_answer_amid_chatter_with_braces_is_accepted(
        llm: FakeOpenAI, request_: Request) -> None:
    reply = (f"Sure, {{as asked}} here it is:\n```\n{WITH_CODE}\n```\n"
             "Use `{}` for an empty dict. ```python\nx = {}\n```")
    assert reviewed(llm, request_, reply) == ModelAnswer.model_validate_json(WITH_CODE)
    assert len(llm.requests) == 1


def test_think_block_holding_a_draft_answer_loses_to_the_answer_after_it(
        llm: FakeOpenAI, request_: Request) -> None:
    draft = answer(score=10, verdict="request_changes")
    result = reviewed(llm, request_, f"<think>Draft: {draft}. Too harsh.</think>\n"
                                     f"{answer(score=77)}")
    assert result.score == 77
    assert len(llm.requests) == 1


def test_reasoning_with_only_its_closing_tag_is_skipped(
        llm: FakeOpenAI, request_: Request) -> None:
    # Some servers strip the opening <think> but keep the closing one.
    reply = f"The dict {{a: 1}} is fine, {answer(score=12)} was my draft.</THINK>{answer(score=84)}"
    assert reviewed(llm, request_, reply).score == 84
    assert len(llm.requests) == 1


def test_of_two_answers_the_model_gives_the_last_counts(
        llm: FakeOpenAI, request_: Request) -> None:
    reply = f"First try: {answer(score=30)}\nCorrected: {answer(score=70)}"
    assert reviewed(llm, request_, reply).score == 70


def test_an_answer_inside_an_unclosed_think_block_is_still_found(
        llm: FakeOpenAI, request_: Request) -> None:
    assert reviewed(llm, request_, f"<think>Let me see. {answer(score=66)}").score == 66
    assert len(llm.requests) == 1


def test_invalid_json_inside_a_fence_is_repaired_with_the_json_error(
        llm: FakeOpenAI, request_: Request) -> None:
    result = reviewed(llm, request_, f"```json\n{BAD_JSON}\n```", answer(score=50))
    assert result.score == 50
    repair = llm.requests[1]["messages"][-1]["content"]
    assert "invalid JSON: Expecting property name enclosed in double quotes" in repair


def test_a_wrong_object_is_repaired_with_its_schema_errors(
        llm: FakeOpenAI, request_: Request) -> None:
    result = reviewed(llm, request_, 'Here: {"rating": "good"} ok?', answer(score=51))
    assert result.score == 51
    repair = llm.requests[1]["messages"][-1]["content"]
    assert "does not match the schema" in repair
    assert "score: Field required" in repair


# --- where the answer is -----------------------------------------------------------------------

@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
def test_answer_in_a_reasoning_field_with_null_content_is_used_and_logged(
        llm: FakeOpenAI, request_: Request, field: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="reviewer")
    result = reviewed(llm, request_, Reply(content=None, reasoning=answer(score=73),
                                           reasoning_field=field))
    assert result.score == 73
    assert len(llm.requests) == 1
    assert f"the answer was in message.{field}, not message.content" in caplog.messages


def test_reasoning_that_ends_in_the_answer_is_used_when_content_is_empty(
        llm: FakeOpenAI, request_: Request) -> None:
    thinking = f"The change reads {{Y}} from the env; fine.\n\n{answer(score=81)}"
    assert reviewed(llm, request_, Reply(content="", reasoning=thinking)).score == 81


def test_content_holding_json_wins_over_reasoning(llm: FakeOpenAI, request_: Request) -> None:
    reply = Reply(content=answer(score=62), reasoning=answer(score=11), reasoning_field="reasoning")
    assert reviewed(llm, request_, reply).score == 62


def test_prose_content_loses_to_json_in_reasoning(llm: FakeOpenAI, request_: Request) -> None:
    reply = Reply(content="I reviewed the change.", reasoning=answer(score=64))
    assert reviewed(llm, request_, reply).score == 64
    assert len(llm.requests) == 1


def test_content_with_stray_braces_loses_to_an_answer_in_reasoning(
        llm: FakeOpenAI, request_: Request) -> None:
    reply = Reply(content="Use {} for an empty mapping.", reasoning=answer(score=65))
    assert reviewed(llm, request_, reply).score == 65
    assert len(llm.requests) == 1


def test_invalid_json_in_content_is_repaired_when_reasoning_holds_none(
        llm: FakeOpenAI, request_: Request) -> None:
    result = reviewed(llm, request_, Reply(content=BAD_JSON, reasoning="Thinking {maybe}."),
                      answer(score=52))
    assert result.score == 52
    assert llm.requests[1]["messages"][-2] == {"role": "assistant", "content": BAD_JSON}


def test_reasoning_without_json_is_what_the_repair_shows_the_model(
        llm: FakeOpenAI, request_: Request) -> None:
    result = reviewed(llm, request_, Reply(content=None, reasoning="Hmm, it looks fine."),
                      answer(score=59))
    assert result.score == 59
    repair = llm.requests[1]["messages"]
    assert repair[-2] == {"role": "assistant", "content": "Hmm, it looks fine."}
    assert "the reply contains no JSON object" in repair[-1]["content"]


# --- untrusted bytes ---------------------------------------------------------------------------

ODD = ('{"score": 70, "verdict": "comment", "summary": "Bad \\ud800 byte\\u0000 and \\u001b[31m",'
       ' "findings": [{"path": "src/app.py\\u0000", "line": 3, "severity": "minor",'
       ' "title": "T\\udfff", "message": "M\\ud83d\\ude00 ok"}]}')


def test_lone_surrogates_and_nul_in_an_answer_are_cleaned(
        llm: FakeOpenAI, request_: Request) -> None:
    result = reviewed(llm, request_, ODD)
    assert result.summary == "Bad \ufffd byte and [31m"
    [item] = result.findings
    assert (item.path, item.title, item.message) == ("src/app.py", "T\ufffd", "M😀 ok")
    result.model_dump_json().encode("utf-8")  # the review is written as UTF-8


def test_lone_surrogates_in_the_reply_itself_are_cleaned(
        llm: FakeOpenAI, request_: Request) -> None:
    # The server's JSON escapes a lone surrogate in content; the SDK hands it over as one.
    result = reviewed(llm, request_, "\ud800\x00" + answer(summary="Fine \udc00."))
    assert result.summary == "Fine \ufffd."


@pytest.mark.parametrize("bad", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_non_finite_numbers_get_a_repair_not_a_crash(
        llm: FakeOpenAI, request_: Request, bad: str) -> None:
    reply = answer().replace('"score": 80', f'"score": {bad}')
    assert reviewed(llm, request_, reply, answer(score=45)).score == 45
    assert "invalid JSON" in llm.requests[1]["messages"][-1]["content"]


@pytest.mark.parametrize("depth", [500, 100_000])  # decodable, and beyond the decoder
def test_absurdly_nested_json_gets_a_repair_not_a_crash(
        llm: FakeOpenAI, request_: Request, depth: int) -> None:
    nested = "[" * depth + "]" * depth
    reply = answer().replace('"findings": []', f'"findings": {nested}')
    assert reviewed(llm, request_, reply, answer(score=44)).score == 44


@pytest.mark.parametrize("reply", ["", "   ", "{", "}{", "{{{{", "\x00", "<think></think>"])
def test_degenerate_replies_raise_value_error_only(reply: str) -> None:
    with pytest.raises(ValueError, match=r"no JSON object|invalid JSON"):
        parse_answer(reply)


def test_cli_writes_a_review_from_an_answer_with_odd_unicode(
        llm: FakeOpenAI, tmp_path: Path) -> None:
    llm.queue(ODD.replace("src/app.py", "calc.py"))
    out = tmp_path / "review.json"
    result = review_cli(llm, make_repo(tmp_path), out)
    assert result.code == 0, result.stderr
    review = json.loads(out.read_bytes().decode("utf-8"))
    assert review["summary"] == "Bad \ufffd byte and [31m"
