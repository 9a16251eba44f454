"""Drive the OpenAI stand-in with the real SDK over real HTTP."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from tests.openai_standin import FakeOpenAI, Reply

MESSAGES: list[Any] = [{"role": "user", "content": "Review this diff please."}]


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


def client_for(fake: FakeOpenAI, api_key: str = "k", timeout: float = 10.0) -> openai.OpenAI:
    # max_retries=0: the SDK would otherwise retry 5xx/timeouts, consuming queued replies.
    return openai.OpenAI(base_url=fake.url, api_key=api_key, max_retries=0, timeout=timeout)


def chat(client: openai.OpenAI, **kwargs: Any) -> Any:
    kwargs.setdefault("model", "test-model")
    return client.chat.completions.create(messages=MESSAGES, **kwargs)


def test_valid_reply_and_usage(fake: FakeOpenAI) -> None:
    fake.queue(Reply(content="Looks good.", completion_tokens=3))
    result = chat(client_for(fake))
    assert result.object == "chat.completion"
    assert result.id.startswith("chatcmpl-")
    assert result.model == "test-model"
    assert result.choices[0].message.role == "assistant"
    assert result.choices[0].message.content == "Looks good."
    assert result.choices[0].finish_reason == "stop"
    assert result.usage is not None
    assert result.usage.prompt_tokens == len("Review this diff please.") // 4
    assert result.usage.completion_tokens == 3
    assert result.usage.total_tokens == result.usage.prompt_tokens + 3


def test_prompt_tokens_override(fake: FakeOpenAI) -> None:
    fake.queue(Reply(content="ok", prompt_tokens=4096))
    usage = chat(client_for(fake)).usage
    assert usage is not None and usage.prompt_tokens == 4096


def test_fenced_json_comes_through_verbatim(fake: FakeOpenAI) -> None:
    fenced = '```json\n{"findings": [{"line": 3, "msg": "bug"}]}\n```'
    fake.queue(fenced)
    assert chat(client_for(fake)).choices[0].message.content == fenced


def test_finish_reason_length(fake: FakeOpenAI) -> None:
    fake.queue(Reply(content='{"findings": [', finish_reason="length"))
    result = chat(client_for(fake), max_tokens=5)
    assert result.choices[0].finish_reason == "length"
    assert fake.requests[0]["max_tokens"] == 5


def test_rejected_json_schema_but_json_object_with_schema_accepted() -> None:
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}}
    with FakeOpenAI(reject_formats={"json_schema"}) as fake:
        fake.queue('{"ok": true}')
        client = client_for(fake)
        strict = {"type": "json_schema", "json_schema": {"name": "review", "schema": schema}}
        with pytest.raises(openai.BadRequestError, match="json_schema is not supported"):
            chat(client, response_format=strict)
        # llama.cpp-style fallback; the typed parameter has no "schema" key, so use extra_body.
        loose = {"type": "json_object", "schema": schema}
        result = chat(client, extra_body={"response_format": loose})
        assert result.choices[0].message.content == '{"ok": true}'  # rejection did not consume it
        assert [r["response_format"] for r in fake.requests] == [strict, loose]


def test_reject_status_422() -> None:
    with FakeOpenAI(reject_formats={"json_schema"}, reject_status=422) as fake:
        fmt = {"type": "json_schema", "json_schema": {"name": "r", "schema": {"type": "object"}}}
        with pytest.raises(openai.UnprocessableEntityError) as info:
            chat(client_for(fake), response_format=fmt)
        assert info.value.status_code == 422


def test_scripted_500(fake: FakeOpenAI) -> None:
    fake.queue(Reply(status=500, error="CUDA out of memory"))
    with pytest.raises(openai.InternalServerError, match="CUDA out of memory") as info:
        chat(client_for(fake))
    assert isinstance(info.value.body, dict) and info.value.body["type"] == "server_error"


def test_empty_queue_is_500(fake: FakeOpenAI) -> None:
    with pytest.raises(openai.InternalServerError, match="no scripted reply"):
        chat(client_for(fake))


def test_responder_used_when_queue_empty(fake: FakeOpenAI) -> None:
    fake.responder = lambda body: f"echo {body['messages'][0]['content']}"
    assert chat(client_for(fake)).choices[0].message.content == "echo Review this diff please."


def test_wrong_api_key() -> None:
    with FakeOpenAI(api_key="right") as fake:
        fake.queue("fine")
        with pytest.raises(openai.AuthenticationError) as info:
            chat(client_for(fake, api_key="wrong"))
        assert info.value.code == "invalid_api_key"
        assert chat(client_for(fake, api_key="right")).choices[0].message.content == "fine"


def test_unknown_model(fake: FakeOpenAI) -> None:
    with pytest.raises(openai.NotFoundError, match="model 'nope' not found"):
        chat(client_for(fake), model="nope")


def test_any_model_when_models_empty() -> None:
    with FakeOpenAI(models=()) as fake:
        fake.queue("hi")
        assert chat(client_for(fake), model="whatever:7b").model == "whatever:7b"


def test_models_endpoint() -> None:
    with FakeOpenAI(models=("a", "b")) as fake:
        listed = client_for(fake).models.list()
        assert [m.id for m in listed.data] == ["a", "b"]
        assert listed.data[0].owned_by == "standin"


def test_streaming_refused(fake: FakeOpenAI) -> None:
    fake.queue("unused")
    with pytest.raises(openai.BadRequestError, match="streaming not supported"):
        chat(client_for(fake), stream=True)


def test_requests_recorded_in_order(fake: FakeOpenAI) -> None:
    fake.queue("one", "two")
    client = client_for(fake)
    chat(client, temperature=0)
    chat(client, model="test-model", seed=7)
    assert len(fake.requests) == 2
    assert fake.requests[0]["messages"] == MESSAGES
    assert fake.requests[0]["temperature"] == 0
    assert fake.requests[1]["seed"] == 7
    assert "stream" not in fake.requests[0]  # the SDK omits unset parameters


def test_delay_triggers_sdk_timeout(fake: FakeOpenAI) -> None:
    fake.queue(Reply(content="too late", delay=2.0), "on time")
    client = client_for(fake, timeout=0.3)
    with pytest.raises(openai.APITimeoutError):
        chat(client)
    assert chat(client).choices[0].message.content == "on time"


# --- answers where reasoning servers put them --------------------------------------------------

@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
def test_answer_in_a_reasoning_field_with_null_content(fake: FakeOpenAI, field: str) -> None:
    fake.queue(Reply(content=None, reasoning='{"ok": true}', reasoning_field=field))
    message = chat(client_for(fake)).choices[0].message
    assert message.content is None
    # The SDK keeps fields it does not declare; code under test reads them from model_extra.
    assert message.model_extra == {field: '{"ok": true}'}


def test_null_content_is_null_on_the_wire(fake: FakeOpenAI) -> None:
    fake.queue(Reply(content=None, reasoning="thinking"))
    request = urllib.request.Request(f"{fake.url}/chat/completions", method="POST",
                                     data=json.dumps({"model": "test-model",
                                                      "messages": MESSAGES}).encode())
    with urllib.request.urlopen(request, timeout=10) as response:
        message = json.load(response)["choices"][0]["message"]
    assert message == {"role": "assistant", "content": None, "reasoning_content": "thinking"}


def test_no_reasoning_field_unless_asked(fake: FakeOpenAI) -> None:
    fake.queue("plain")
    assert chat(client_for(fake)).choices[0].message.model_extra == {}


# --- error bodies in each server's shape -------------------------------------------------------

@pytest.mark.parametrize(("style", "body"), [
    ("openai", {"message": "boom", "type": "invalid_request_error", "param": None, "code": None}),
    ("vllm-legacy", {"object": "error", "message": "boom", "type": "invalid_request_error",
                     "param": None, "code": 400}),
    ("fastapi", {"detail": "boom"}),
    ("ollama", "boom"),  # {"error": "boom"}: the SDK unwraps "error"
    ("text", "boom"),
])
def test_error_body_styles_as_the_sdk_sees_them(style: str, body: object) -> None:
    with FakeOpenAI(error_style=style) as fake:
        fake.queue(Reply(status=400, error="boom"))
        with pytest.raises(openai.BadRequestError) as info:
            chat(client_for(fake))
    assert info.value.body == body
    # Only a "message" field (nested or not) reaches the SDK's own message.
    assert ("boom" in info.value.message) == (style in ("openai", "vllm-legacy"))


def test_fastapi_422_is_a_list_of_field_errors() -> None:
    with FakeOpenAI(error_style="fastapi") as fake:
        fake.queue(Reply(status=422, error="Value error, too many messages"))
        with pytest.raises(openai.UnprocessableEntityError) as info:
            chat(client_for(fake))
    assert info.value.body == {"detail": [{"type": "value_error", "loc": ["body", "messages"],
                                           "msg": "Value error, too many messages",
                                           "input": None}]}


def test_a_raw_body_is_sent_as_it_is(fake: FakeOpenAI) -> None:
    # vLLM workers behind some gateways answer 200 with an error object and no choices.
    error = {"object": "error", "message": "The model `m` does not exist.", "code": 404}
    fake.queue(Reply(body=error))
    result = chat(client_for(fake))
    # The SDK does not validate: fields it declares ("object") become attributes, others extra.
    assert result.model_extra == {"message": "The model `m` does not exist.", "code": 404}
    assert getattr(result, "choices", None) is None


def test_a_reply_can_override_the_error_style(fake: FakeOpenAI) -> None:
    fake.queue(Reply(status=404, error="model 'x' not found, try pulling it first",
                     error_style="ollama"))
    with pytest.raises(openai.NotFoundError) as info:
        chat(client_for(fake))
    assert info.value.body == "model 'x' not found, try pulling it first"


def test_fastapi_refuses_json_schema_with_a_422_validation_detail() -> None:
    with FakeOpenAI(reject_formats={"json_schema"}, reject_status=422,
                    error_style="fastapi") as fake:
        fmt = {"type": "json_schema", "json_schema": {"name": "r", "schema": {"type": "object"}}}
        with pytest.raises(openai.UnprocessableEntityError) as info:
            chat(client_for(fake), response_format=fmt)
    assert info.value.message == "Error code: 422"  # the SDK shows none of the body
    [detail] = info.value.body["detail"]  # type: ignore[index]
    assert detail["loc"] == ["body", "response_format", "type"]
    assert detail["msg"] == "Input should be 'text' or 'json_object'"
    assert detail["input"] == "json_schema"


def test_llama_cpp_python_reports_validation_as_a_500() -> None:
    # As llama-cpp-python 0.3's server answered a json_schema request on this machine.
    with FakeOpenAI(reject_formats={"json_schema"}, reject_status=500,
                    error_style="llama-cpp-python") as fake:
        fmt = {"type": "json_schema", "json_schema": {"name": "r", "schema": {"type": "object"}}}
        with pytest.raises(openai.InternalServerError) as info:
            chat(client_for(fake), response_format=fmt)
    message = info.value.body["message"]  # type: ignore[index]
    assert message.startswith("1 validation error:\n")
    assert "'loc': ('body', 'response_format', 'type')" in message
    assert "create_chat_completion" in message


# --- how a prefix cache and a context window show in usage -------------------------------------

LONG = [{"role": "system", "content": "rules " * 200}, {"role": "user", "content": "diff one"}]
LONGER = [*LONG, {"role": "assistant", "content": "{}"}, {"role": "user", "content": "again"}]


def usage_of(fake: FakeOpenAI, messages: list[Any]) -> Any:
    fake.queue("ok")
    return openai.OpenAI(base_url=fake.url, api_key="k", max_retries=0).chat.completions.create(
        model="test-model", messages=messages).usage


def test_cache_reported_counts_everything_and_reports_the_cached_part() -> None:
    with FakeOpenAI(cache="reported") as fake:
        first, second = usage_of(fake, LONG), usage_of(fake, LONGER)
    assert first.prompt_tokens_details.cached_tokens == 0
    assert second.prompt_tokens == (1200 + 8 + 2 + 5) // 4
    assert second.prompt_tokens_details.cached_tokens >= 1200 // 4


def test_cache_uncached_only_counts_the_new_tokens_and_reports_no_cache() -> None:
    with FakeOpenAI(cache="uncached-only") as fake:
        first, second = usage_of(fake, LONG), usage_of(fake, LONGER)
    assert first.prompt_tokens == (1200 + 8) // 4
    assert second.prompt_tokens < 10
    assert second.prompt_tokens_details is None


def test_cache_apart_counts_the_new_tokens_and_reports_the_cached_ones() -> None:
    with FakeOpenAI(cache="apart") as fake:
        usage_of(fake, LONG)
        second = usage_of(fake, LONGER)
    assert second.prompt_tokens < 10
    assert second.prompt_tokens_details.cached_tokens >= 1200 // 4


def test_cached_tokens_override(fake: FakeOpenAI) -> None:
    fake.queue(Reply(content="ok", prompt_tokens=3000, cached_tokens=2900))
    usage = chat(client_for(fake)).usage
    assert usage is not None and usage.prompt_tokens_details is not None
    assert (usage.prompt_tokens, usage.prompt_tokens_details.cached_tokens) == (3000, 2900)


def test_context_window_caps_the_count_silently() -> None:
    with FakeOpenAI(context_window=100) as fake:
        assert usage_of(fake, LONG).prompt_tokens == 100


def test_a_reply_carries_its_headers(fake: FakeOpenAI) -> None:
    fake.queue(Reply(status=429, error="slow down", headers={"Retry-After": "1"}))
    with pytest.raises(openai.RateLimitError) as caught:
        chat(client_for(fake))
    assert caught.value.response.headers["retry-after"] == "1"


def test_a_dropped_reply_resets_the_connection_after_recording_the_request(
        fake: FakeOpenAI) -> None:
    fake.queue(Reply(drop=True), Reply(content="Second time lucky."))
    with pytest.raises(openai.APIConnectionError):
        chat(client_for(fake))
    assert chat(client_for(fake)).choices[0].message.content == "Second time lucky."
    assert len(fake.requests) == len(fake.arrivals) == 2
    assert fake.arrivals[0] <= fake.arrivals[1]


def test_a_trickled_reply_arrives_whole_in_small_pieces(fake: FakeOpenAI) -> None:
    fake.queue(Reply(content="slow", trickle=0.01))
    assert chat(client_for(fake, timeout=1.0)).choices[0].message.content == "slow"
