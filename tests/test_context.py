"""reviewer.context against the stand-in playing each server: what it reads, and the budget."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from reviewer.context import (
    MIN_OUTPUT,
    OLLAMA_DEFAULT_CONTEXT,
    REVIEW_OUTPUT,
    Window,
    detect,
    input_budget,
)
from tests.openai_standin import FakeOpenAI, Served

MODEL = "qwen2.5-coder:7b"


@contextmanager
def serving(served: Served | None, api_key: str | None = None) -> Iterator[FakeOpenAI]:
    with FakeOpenAI(models=(MODEL,), served=served, api_key=api_key) as server:
        yield server


def test_llamacpp_props_per_slot_context() -> None:
    with serving(Served("llamacpp", context=16384)) as server:
        window = detect(server.url, None, MODEL)
    assert window == Window(16384, "llama.cpp /props n_ctx (per slot)")
    # /props is asked at the server root, not under /v1.
    assert server.probes == ["GET /v1/models", "GET /props"]


def test_vllm_max_model_len_from_models_list() -> None:
    with serving(Served("vllm", context=32768)) as server:
        window = detect(server.url, None, MODEL)
    assert window == Window(32768, "vLLM /v1/models max_model_len")
    assert server.probes == ["GET /v1/models"]  # the first probe answers; no more are sent


def test_vllm_single_model_under_another_name() -> None:
    with serving(Served("vllm", context=8192)) as server:
        window = detect(server.url, None, "an-alias")
    assert window is not None and window.tokens == 8192


def test_ollama_loaded_with_smaller_context_warns() -> None:
    with serving(Served("ollama", context=4096, native=32768, loaded=True)) as server:
        window = detect(server.url, None, MODEL)
    assert window is not None
    assert (window.tokens, window.source) == (4096, "Ollama /api/ps context_length (loaded)")
    assert window.note == (
        "Ollama will run qwen2.5-coder:7b with a 4,096-token context although the model "
        "supports 32,768: its OpenAI endpoint cuts longer prompts silently; raise "
        "OLLAMA_CONTEXT_LENGTH or set num_ctx in a Modelfile")
    assert server.probes == ["GET /v1/models", "GET /props", "POST /api/show", "GET /api/ps"]


def test_ollama_loaded_with_full_context_is_quiet() -> None:
    with serving(Served("ollama", context=32768, native=32768)) as server:
        window = detect(server.url, None, MODEL)
    assert window is not None and (window.tokens, window.note) == (32768, None)


def test_ollama_not_loaded_assumes_the_default_and_says_so() -> None:
    with serving(Served("ollama", context=65536, native=32768, loaded=False)) as server:
        window = detect(server.url, None, MODEL)
    assert window is not None
    assert (window.tokens, window.source) == (OLLAMA_DEFAULT_CONTEXT,
                                              "Ollama default (model not loaded)")
    assert window.note is not None
    assert "will probably run qwen2.5-coder:7b with a 4,096-token context" in window.note
    assert "not loaded" in window.note and "OLLAMA_CONTEXT_LENGTH" in window.note


def test_ollama_modelfile_num_ctx_when_not_loaded() -> None:
    served = Served("ollama", native=32768, loaded=False, num_ctx=16384)
    with serving(served) as server:
        window = detect(server.url, None, MODEL)
    assert window is not None
    assert (window.tokens, window.source) == (16384, "Ollama /api/show num_ctx (Modelfile)")
    assert window.note is not None and "will run" in window.note and "32,768" in window.note


def test_ollama_context_never_exceeds_the_models_own() -> None:
    with serving(Served("ollama", context=65536, native=32768)) as server:
        window = detect(server.url, None, MODEL)
    assert window is not None and window.tokens == 32768


def test_litellm_model_info_limits_the_input_only() -> None:
    with serving(Served("litellm", context=128000)) as server:
        window = detect(server.url, "sk-1", MODEL)
    assert window == Window(128000, "LiteLLM /model/info max_input_tokens", input_only=True)
    assert server.probes[-1] == "GET /model/info"


def test_key_is_sent_to_the_same_server() -> None:
    # The stand-in refuses every route without the key: detection works only if it is sent.
    with serving(Served("llamacpp", context=4096), api_key="sk-secret") as server:
        assert detect(server.url, "sk-secret", MODEL) is not None
        assert detect(server.url, "wrong", MODEL) is None


def test_server_answering_none_gives_none(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="reviewer.context")
    with serving(None) as server:
        assert detect(server.url, None, MODEL) is None
    assert server.probes == ["GET /v1/models", "GET /props", "POST /api/show",
                             "GET /model/info"]
    assert "HTTP 404" in caplog.text and "did not say its context window" in caplog.text


def test_nothing_listening_gives_none_at_once() -> None:
    with serving(None) as server:
        url = server.url
    started = time.monotonic()
    assert detect(url, None, MODEL) is None
    assert time.monotonic() - started < 1.0


def test_slow_server_times_out_quickly() -> None:
    with serving(Served("llamacpp", delay=5.0)) as server:
        started = time.monotonic()
        assert detect(server.url, None, MODEL, timeout=0.3) is None
        assert time.monotonic() - started < 1.5
        assert server.probes == ["GET /v1/models"]  # out of time: no further probe


def test_not_http_is_none() -> None:
    assert detect("file:///etc/passwd", None, MODEL) is None


# --- input_budget -------------------------------------------------------------------------

def test_budget_without_window_is_the_default_or_the_flag() -> None:
    assert input_budget(None, 2048, None, 6000) == (6000, 2048)
    assert input_budget(None, 2048, 9000, 6000) == (9000, 2048)


def test_budget_large_window_keeps_the_output() -> None:
    # 32,768 - 5 % margin (1,638) = 31,130 usable; the 2,048 output fits; the rest is input.
    assert input_budget(Window(32768, "s"), 2048, None, 6000) == (29082, 2048)


def test_budget_small_window_reserves_what_a_review_needs() -> None:
    # 4,096 - 204 = 3,892 usable: the answer gets the 1,024 tokens a review needs, not 2,048,
    # so the diff keeps the rest (Ollama's default context).
    max_input, output = input_budget(Window(4096, "s"), 2048, None, 6000)
    assert (max_input, output) == (2868, REVIEW_OUTPUT)
    assert max_input + output <= 4096
    # At 8,192 a quarter of the window is more than that: 7,783 // 4.
    assert input_budget(Window(8192, "s"), 2048, None, 6000) == (5838, 1945)


def test_budget_tiny_window_uses_the_minimum_margin() -> None:
    assert input_budget(Window(1024, "s"), 2048, None, 6000) == (480, 480)  # 1024 - 64 = 960


def test_budget_flag_wins_and_the_output_shrinks_to_fit() -> None:
    assert input_budget(Window(8192, "s"), 2048, 7000, 6000) == (7000, 783)  # 8192 - 409 - 7000
    assert input_budget(Window(8192, "s"), 2048, 2000, 6000) == (2000, 2048)
    assert input_budget(Window(8192, "s"), 2048, 8000, 6000) == (8000, MIN_OUTPUT)


def test_budget_input_only_window_keeps_the_output() -> None:
    window = Window(128000, "LiteLLM", input_only=True)
    assert input_budget(window, 2048, None, 6000) == (121600, 2048)
    assert input_budget(window, 2048, 5000, 6000) == (5000, 2048)


@pytest.mark.parametrize("tokens", [600, 2048, 4096, 8192, 32768, 131072])
@pytest.mark.parametrize("max_output", [256, 1024, 2048, 8192])
def test_budget_prompt_and_output_fit_the_window(tokens: int, max_output: int) -> None:
    max_input, output = input_budget(Window(tokens, "s"), max_output, None, 6000)
    assert max_input > 0 and 0 < output <= max_output
    assert max_input + output <= tokens
