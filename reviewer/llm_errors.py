"""What a model server said when it refused a request: its own words, whatever the body's shape.

The openai SDK's message carries only `error.message`; every other shape becomes a bare "Error
code: 422". The SDK keeps the decoded body in `exc.body`, with a top-level "error" unwrapped.
Body shapes seen in the field:

- `{"error": {"message": ...}}`: OpenAI, vLLM, LiteLLM, llama.cpp's llama-server, Ollama's /v1
  (llama-cpp-python's server too, with a multi-line pydantic report and a traceback in it)
- `{"object": "error", "message": ...}`: vLLM before it nested the error
- `{"detail": [{"loc": [...], "msg": ...}]}`: FastAPI's request validation (HTTP 422)
- `{"detail": "..."}`: FastAPI's HTTPException
- `{"error": "..."}`: Ollama's native handlers
- plain text or an HTML page: Go's "404 page not found", proxies and gateways
"""

from __future__ import annotations

import json
import re
from typing import Any

import openai

from reviewer.answer import clean_text

MAX_WORDS = 300
MIN_SECRET = 8
TAG = re.compile(r"<[^<>]{1,200}>")
KEYS = ("error", "message", "detail", "msg")
# A server that cannot do a response_format says so naming the field or the type; a 400 for a
# prompt that is too long does not, so it is not mistaken for a refusal of the format.
FORMAT_WORDS = ("response_format", "json_schema", "json_object", "schema")


def words_of(body: object) -> str | None:
    """The explanation in an error body of any shape above, or None when it holds none."""
    if isinstance(body, str):
        return TAG.sub(" ", body) if body.strip() else None
    if isinstance(body, list):
        return "; ".join(w for w in (_item(v) for v in body[:5]) if w) or None
    if isinstance(body, dict):
        for key in KEYS:
            if body.get(key):
                return words_of(body[key])
        return json.dumps(body) if body else None
    return None if body is None else str(body)


def _item(value: Any) -> str | None:
    # FastAPI names the offending field in "loc"; without it "Input should be 'text' or
    # 'json_object'" would not say which field was refused.
    if isinstance(value, dict) and "msg" in value:
        where = ".".join(str(p) for p in value.get("loc") or ())
        return f"{where}: {value['msg']}" if where else str(value["msg"])
    return words_of(value)


def one_line(text: str, limit: int = MAX_WORDS) -> str:
    """text on one line of at most limit characters, without control characters."""
    line = " ".join(clean_text(text).split())
    return line if len(line) <= limit else line[:limit - 1].rstrip() + "…"


def server_words(exc: openai.APIStatusError) -> str:
    """The server's own words for a refused request: one line, at most MAX_WORDS characters."""
    return one_line(words_of(exc.body) or exc.message)


def refuses_format(exc: openai.APIStatusError) -> bool:
    """Whether the server refused the response_format (so a simpler one is worth a try).

    Servers refuse it with 400 (OpenAI-style validation), 422 (FastAPI, whose body alone names
    the field) or 500 (llama.cpp servers that validate late).
    """
    if exc.status_code not in (400, 422, 500):
        return False
    text = (words_of(exc.body) or exc.message).lower()
    return any(w in text for w in FORMAT_WORDS)


def describe(exc: openai.APIError, host: str, model: str, timeout: float,
             secret: str | None = None) -> str:
    """One actionable line for a failed request, with the server's own words when it sent any."""
    where = f"model server at {host}"
    if isinstance(exc, openai.APITimeoutError):
        return f"{where} did not answer within {timeout:g}s: raise --timeout"
    if isinstance(exc, openai.APIConnectionError):
        return f"cannot reach the {where}: check --base-url (REVIEWER_BASE_URL) and that it runs"
    if not isinstance(exc, openai.APIStatusError):
        return f"{where} failed: {one_line(str(exc))}"
    said = server_words(exc)
    # Some servers echo the key they refused. A placeholder such as "none" or "ollama" is no
    # secret, and masking it would garble ordinary words.
    if secret and len(secret) >= MIN_SECRET:
        said = said.replace(secret, "***")
    if isinstance(exc, openai.AuthenticationError):
        return f"{where} rejected the API key (HTTP 401: {said}): check --api-key " \
               "(REVIEWER_API_KEY)"
    if isinstance(exc, openai.NotFoundError):
        return (f"{where} has no model {model!r} (HTTP 404: {said}): check --model, or the "
                "path of --base-url (usually ends in /v1)")
    return f"{where} failed with HTTP {exc.status_code}: {said}"
