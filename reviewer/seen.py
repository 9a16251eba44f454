"""Pure: what a model server saw of a prompt, from the figures it reports.

A prompt's prefix that this client sent before (or an earlier run: the system message is the
same bytes in every run with one spec, see prompt.system) may be served from the server's
prefix cache; what is left must show in its count, or its context window cut the prompt.
"""

from __future__ import annotations

import logging
from typing import Any

from reviewer.errors import ModelError

log = logging.getLogger(__name__)

# A server that saw far fewer tokens than we sent truncated the prompt (Ollama does, silently).
TRUNCATION_RATIO = 0.6
MIN_CHECKED_TOKENS = 1000
CHARS_PER_REAL_TOKEN = 4
CONTEXT_SETTINGS = "Ollama: set OLLAMA_CONTEXT_LENGTH or num_ctx; llama.cpp: --ctx-size"


def prompt_text(messages: list[dict[str, Any]]) -> str:
    """The messages as one text, in the order a chat template lays them out, which is what a
    prefix cache matches."""
    return "".join(f"{m['role']}\n{m['content']}\n" for m in messages)


def system_chars(messages: list[dict[str, Any]]) -> int:
    """Characters of the leading system message in prompt_text's layout; 0 without one."""
    if not messages or messages[0]["role"] != "system":
        return 0
    return len(prompt_text(messages[:1]))


def common_prefix(a: str, b: str) -> int:
    """How many leading characters a and b share. By halving: slices compare in C, so a long
    prompt costs a few comparisons, not a loop."""
    low, high = 0, min(len(a), len(b))
    while low < high:
        mid = (low + high + 1) // 2
        if a[:mid] == b[:mid]:
            low = mid
        else:
            high = mid - 1
    return low


def check_seen(reported: int, cached: int, chars: int, shared: int, stable: int = 0) -> None:
    """Raise or warn when the server counted far fewer prompt tokens than it was sent.

    reported is usage.prompt_tokens, cached usage.prompt_tokens_details.cached_tokens (0 when
    absent), chars the prompt's length, shared the characters of it this client sent before and
    stable those of its leading system message, which an earlier run may have sent.
    The figures are evidence, not proof: OpenAI, vLLM, llama.cpp and Ollama count cached tokens
    inside prompt_tokens, but some Ollama versions counted only the uncached ones and reported
    no cached figure (ollama/ollama#16414), and older ones 0 for a prompt served from the cache
    (ollama/ollama#5370). So only a first request (no prefix this client sent before, none
    reported cached) that the server counted far short raises ModelError: that is Ollama
    dropping the start of a prompt longer than its context. Anything else only warns.
    """
    must = (chars - max(shared, stable)) // CHARS_PER_REAL_TOKEN
    # A server that reports more cached than prompt tokens must be counting them apart.
    seen = reported + cached if cached > reported else reported
    if must < MIN_CHECKED_TOKENS or seen == 0 or seen >= must * TRUNCATION_RATIO:
        return
    # A prefix shared with another run's request could be cached too: the system message is
    # the same in every run with the same spec, and shared counts it (ModelClient._remember).
    if shared == 0 and cached == 0:
        raise ModelError(
            f"the model server saw only {seen} of about {must} prompt tokens: its context "
            f"window cut the diff ({CONTEXT_SETTINGS}), or lower --max-input-tokens")
    log.warning("the model server counted only %d of about %d new prompt tokens; its answer is "
                "kept, but if its context window cut the prompt, raise it (%s)", seen, must,
                CONTEXT_SETTINGS)
