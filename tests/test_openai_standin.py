"""Drive the OpenAI stand-in with the real SDK over real HTTP."""

from __future__ import annotations

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
