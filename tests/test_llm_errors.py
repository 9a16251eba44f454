"""Errors as real servers send them: format negotiation and every message read the body."""

from __future__ import annotations

import time

import openai
import pytest

from reviewer import llm_errors
from reviewer.clock import Clock
from reviewer.errors import DeadlineExceeded, ModelError
from reviewer.llm import ModelClient
from reviewer.llm_errors import Endpoint, describe
from reviewer.model import answer_schema
from reviewer.prompt import Request
from tests.conftest import API_KEY, answer
from tests.openai_standin import ERROR_STYLES, FakeOpenAI, Reply
from tests.test_llm import client_for, closed_port_url, format_types, review_error, review_request

# (error style, the status a server of that style refuses a response_format with)
REFUSALS = [("openai", 400), ("vllm-legacy", 400), ("fastapi", 422), ("llama-cpp-python", 500),
            ("ollama", 400), ("text", 400)]


@pytest.fixture
def request_() -> Request:
    return review_request()


def test_every_error_style_is_covered() -> None:
    assert {style for style, _ in REFUSALS} == set(ERROR_STYLES)


@pytest.mark.parametrize(("style", "status"), REFUSALS)
def test_a_refused_json_schema_steps_down_to_json_object_whatever_the_body(
        style: str, status: int, request_: Request) -> None:
    with FakeOpenAI(reject_formats={"json_schema"}, reject_status=status, error_style=style,
                    models=()) as fake:
        fake.queue(answer(score=70), answer(score=71))
        client = client_for(fake.url)
        assert client.review(request_).score == 70
        assert client.review(request_).score == 71
    # A refusal of the format is not retried, even as a 500: negotiation steps down at once.
    assert format_types(fake) == ["json_schema", "json_object", "json_object"]
    assert fake.requests[-1]["response_format"] == {"type": "json_object",
                                                    "schema": answer_schema()}
    assert client.mode == "json_object"


@pytest.mark.parametrize(("style", "status"), REFUSALS)
def test_a_server_refusing_both_formats_gets_plain_instructions(
        style: str, status: int, request_: Request) -> None:
    with FakeOpenAI(reject_formats={"json_schema", "json_object"}, reject_status=status,
                    error_style=style, models=()) as fake:
        fake.queue(answer(score=60))
        client = client_for(fake.url)
        assert client.review(request_).score == 60
    assert format_types(fake)[-1] is None
    assert client.mode == "plain"


@pytest.mark.parametrize("style", ERROR_STYLES)
def test_an_error_shows_the_servers_own_words_whatever_the_body(
        style: str, request_: Request) -> None:
    said = "prompt is too long: 9000 tokens > 4096 maximum"
    with FakeOpenAI(error_style=style, models=()) as fake:
        fake.queue(Reply(status=400, error=said))
        client = client_for(fake.url)
        message = review_error(client, request_)
    assert message == f"model server at 127.0.0.1 failed with HTTP 400: {said}"
    assert format_types(fake) == ["json_schema"]  # not mistaken for a refused format
    assert client.mode == "json_schema"


def test_fastapi_422_names_the_field_it_refused(request_: Request) -> None:
    with FakeOpenAI(error_style="fastapi", models=()) as fake:
        fake.queue(Reply(status=422, error="Input should be a valid list"))
        message = review_error(client_for(fake.url), request_)
    assert message.endswith("failed with HTTP 422: body.messages: Input should be a valid list")
    assert "Error code" not in message


def test_llama_cpp_python_report_is_one_bounded_line(request_: Request) -> None:
    # Its 500 carries pydantic's multi-line report and a traceback.
    report = ("1 validation error:\n  {'type': 'missing', 'loc': ('body', 'messages')}\n\n"
              '  File "llama_cpp/server/app.py", line 376\n' + "    x" * 200)
    with FakeOpenAI(models=()) as fake:
        fake.queue(Reply(status=500, error=report))
        message = review_error(client_for(fake.url, retries=0), request_)
    said = message.split("failed with HTTP 500: ", 1)[1]
    assert "\n" not in message
    assert said.startswith("1 validation error: {'type': 'missing', 'loc': ('body', 'messages')}")
    assert len(said) == 300 and said.endswith("…")


def test_an_html_page_from_a_proxy_is_shown_as_its_text(request_: Request) -> None:
    page = ("<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
            "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
            "</body>\r\n</html>\r\n")
    with FakeOpenAI(error_style="text", models=()) as fake:
        fake.queue(Reply(status=502, error=page))
        message = review_error(client_for(fake.url, retries=0), request_)
    assert message.endswith("failed with HTTP 502: 502 Bad Gateway 502 Bad Gateway nginx")


def test_ollama_unknown_model_shows_its_words_and_names_the_flag(request_: Request) -> None:
    with FakeOpenAI(error_style="ollama", models=()) as fake:
        fake.queue(Reply(status=404, error="model 'qwen3:1b' not found, try pulling it first"))
        message = review_error(client_for(fake.url, model="qwen3:1b"), request_)
    assert "'qwen3:1b' (HTTP 404: model 'qwen3:1b' not found, try pulling it first)" in message
    assert "--model" in message


def test_a_server_echoing_the_refused_key_does_not_get_it_shown(request_: Request) -> None:
    with FakeOpenAI(models=()) as fake:
        fake.queue(Reply(status=401, error=f"Incorrect API key provided: {API_KEY}"))
        message = review_error(client_for(fake.url, api_key=API_KEY), request_)
    assert API_KEY not in message
    assert "Incorrect API key provided: ***" in message
    assert "--api-key" in message


def test_error_messages_carry_no_control_characters(request_: Request) -> None:
    with FakeOpenAI(error_style="ollama", models=()) as fake:
        fake.queue(Reply(status=400, error="bad\x1b[2J\x00 request\u2028here"))
        message = review_error(client_for(fake.url), request_)
    assert message.endswith("HTTP 400: bad[2J request here")


def test_a_model_error_is_a_reviewer_error(request_: Request) -> None:
    with FakeOpenAI(error_style="fastapi", models=()) as fake:
        fake.queue(Reply(status=403, error="Not authenticated"))
        with pytest.raises(ModelError, match=r"HTTP 403: Not authenticated\): check --api-key"):
            client_for(fake.url).review(request_)


def test_a_200_carrying_an_error_and_no_choices_shows_the_error(request_: Request) -> None:
    error = {"object": "error", "message": "The model `m` does not exist.", "type": "NotFound",
             "param": None, "code": 404}
    with FakeOpenAI(models=()) as fake:
        fake.queue(Reply(body=error))
        message = review_error(client_for(fake.url), request_)
    assert message == ("model server at 127.0.0.1 returned no choices: "
                       "The model `m` does not exist.")


# --- what to check, per permanent error ----------------------------------------------------------

def test_an_unknown_model_is_named_with_the_models_the_server_lists(request_: Request) -> None:
    with FakeOpenAI(models=("qwen2.5-coder:7b", "llama3.1:8b")) as fake:
        client = client_for(fake.url, model="qwen2.5-coder:7")
        message = review_error(client, request_)
        review_error(client, request_)
    assert message.endswith("has no model 'qwen2.5-coder:7' (HTTP 404: model 'qwen2.5-coder:7' "
                            "not found): check --model (REVIEWER_MODEL); it lists "
                            "llama3.1:8b, qwen2.5-coder:7b")
    assert len(fake.requests) == 2  # one per review: a 404 is never retried


def test_a_404_without_a_model_list_names_the_model_and_the_path() -> None:
    with FakeOpenAI(models=("other",)) as fake:
        sdk = openai.OpenAI(base_url=fake.url, api_key="k", max_retries=0)
        with pytest.raises(openai.NotFoundError) as caught:
            sdk.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    message = describe(caught.value, Endpoint("h", "http://h/v1", "m", 1.0), served=None)
    assert message == ("model server at h has no model 'm' (HTTP 404: model 'm' not found): "
                       "check --model (REVIEWER_MODEL), or the path of --base-url (usually "
                       "ends in /v1)")


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_key_names_the_flag_and_the_variable(status: int, request_: Request) -> None:
    with FakeOpenAI(models=()) as fake:
        fake.queue(Reply(status=status, error="invalid key"))
        message = review_error(client_for(fake.url), request_)
    assert message == (f"model server at 127.0.0.1 refused the API key (HTTP {status}: invalid "
                       "key): check --api-key (REVIEWER_API_KEY) is set, valid and allowed to "
                       "use model 'test-model'")
    assert len(fake.requests) == 1


def test_an_unreachable_server_names_the_url_tried_without_credentials(
        monkeypatch: pytest.MonkeyPatch, request_: Request) -> None:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setattr(llm_errors, "CONTAINER_FILES", ())
    url = closed_port_url().replace("http://", "http://user:hunter2-pass@")
    message = review_error(client_for(url, retries=0), request_)
    assert message.startswith(f"cannot reach the model server at {closed(url)} (")
    assert "hunter2-pass" not in message and "user" not in message
    assert message.endswith("check --base-url (REVIEWER_BASE_URL) and that the server runs")


def closed(url: str) -> str:
    return "http://" + url.split("@", 1)[1]


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
def test_in_a_container_localhost_is_named_as_the_jobs_own(
        monkeypatch: pytest.MonkeyPatch, request_: Request, host: str) -> None:
    monkeypatch.setenv("CI", "true")
    url = closed_port_url().replace("127.0.0.1", host)
    message = review_error(client_for(url, retries=1), request_)
    assert f"cannot reach the model server at {url} (" in message
    assert message.endswith(f"; in a container or CI job, {host} is the job's own container: "
                            "use the model service's alias or the model server's host name "
                            "(2 tries)")


def test_a_remote_host_gets_no_container_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    assert "container" not in llm_errors.unreachable(OSError("refused"), "http://models:8000/v1")
    assert llm_errors.unreachable(OSError(), "http://[::1]:8000/v1").startswith(
        "cannot reach the model server at http://[::1]:8000/v1: ")


# --- the policy on the model's side --------------------------------------------------------------

def test_a_timed_out_prompt_is_not_sent_again(request_: Request) -> None:
    with FakeOpenAI(models=()) as fake:
        fake.queue(*[Reply(content=answer(), delay=5)] * 3)
        started = time.monotonic()
        message = review_error(client_for(fake.url, timeout=0.5, retries=3), request_)
        assert time.monotonic() - started < 2.0
        time.sleep(2.0)  # long enough for the SDK's own retries, were they on, to send it again
        assert len(fake.requests) == 1
    assert message == "model server at 127.0.0.1 did not answer within 0.5s: raise --timeout"


@pytest.mark.parametrize("reply", [
    Reply(status=429, error="slow down", headers={"Retry-After": "0"}),
    Reply(status=500, error="busy"), Reply(status=502, error="bad gateway"),
    Reply(status=503, error="loading model"), Reply(status=504, error="gateway time-out"),
    Reply(drop=True),
], ids=["429", "500", "502", "503", "504", "reset"])
def test_a_failure_that_passes_is_retried(reply: Reply, request_: Request) -> None:
    with FakeOpenAI(models=()) as fake:
        fake.queue(reply, answer(score=61))
        assert client_for(fake.url, retries=1).review(request_).score == 61
    assert len(fake.requests) == 2


def test_no_request_starts_after_the_deadline(request_: Request) -> None:
    with FakeOpenAI(models=()) as fake:
        client = ModelClient(fake.url, None, "test-model", 100, 10.0, "127.0.0.1",
                             clock=Clock(1.0, time.monotonic() - 2))
        with pytest.raises(DeadlineExceeded, match=r"^--deadline 1s reached: could not get an "
                                                   r"answer from the model server at 127\.0\.0"):
            client.review(request_)
        time.sleep(0.3)  # a request started anyway would have arrived by now
        assert fake.requests == []


def test_the_deadline_cuts_a_slow_answer_short(request_: Request) -> None:
    with FakeOpenAI(models=()) as fake:
        fake.queue(Reply(content=answer(), delay=10))
        client = ModelClient(fake.url, None, "test-model", 100, 30.0, "127.0.0.1",
                             clock=Clock(1.0, time.monotonic()))
        started = time.monotonic()
        with pytest.raises(DeadlineExceeded, match=r"\(last try: no answer in time\)"):
            client.review(request_)
        assert time.monotonic() - started < 1.5


def test_timeout_bounds_the_whole_answer_not_each_read(request_: Request) -> None:
    # Every piece of the body comes well within the timeout, the whole answer does not.
    with FakeOpenAI(models=()) as fake:
        fake.queue(Reply(content=answer(), trickle=0.2))
        started = time.monotonic()
        message = review_error(client_for(fake.url, timeout=1.0), request_)
        assert time.monotonic() - started < 1.8
    assert message.endswith("did not answer within 1s: raise --timeout")
