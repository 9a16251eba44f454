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
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from reviewer.answer import clean_text
from reviewer.retry import RETRYABLE_STATUS, TimedOut, Transient, attempts, retry_after

if TYPE_CHECKING:  # the SDK takes a third of a second to import: only where a model is asked
    import openai

MAX_WORDS = 300
MIN_SECRET = 8
TAG = re.compile(r"<[^<>]{1,200}>")
KEYS = ("error", "message", "detail", "msg")
# A server that cannot do a response_format says so naming the field or the type; a 400 for a
# prompt that is too long does not, so it is not mistaken for a refusal of the format.
FORMAT_WORDS = ("response_format", "json_schema", "json_object", "schema")
# A json_schema refused for what the schema holds, not for its type: vLLM's xgrammar checks
# ("contains features not supported by xgrammar", "Failed to transform json schema into a
# grammar"), llama.cpp's grammar limits ("number of repetitions exceeds sane defaults").
SCHEMA_FEATURE_WORDS = ("feature", "grammar", "keyword", "maxlength", "maxitems", "repetition")
# Files a container runtime leaves in every container (Docker, Podman); GitLab sets CI in jobs.
CONTAINER_FILES = ("/.dockerenv", "/run/.containerenv")
LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1", "0.0.0.0"})  # noqa: S104 (a name)
MAX_LISTED = 12


@dataclass(frozen=True)
class Endpoint:
    """What a message about a failed request names: the server and what was asked of it.

    timeout in seconds; secret is the API key, masked wherever a server echoes it.
    """

    host: str
    base_url: str
    model: str
    timeout: float
    secret: str | None = None


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


def refuses_schema_features(exc: openai.APIStatusError) -> bool:
    """Whether a refused json_schema was refused for the schema's contents (a simpler schema
    is worth a try) rather than for the response_format type itself."""
    text = (words_of(exc.body) or exc.message).lower()
    return any(w in text for w in SCHEMA_FEATURE_WORDS)


def transient(exc: Exception) -> Transient | None:
    """Whether a failed model request may pass: 429 (with the server's Retry-After), 500,
    502, 503, 504 (unless it refuses the response_format: negotiation handles that), or a lost
    connection. A time-out passes too, but its prompt is not sent again (resend False): the
    server may still be working on it."""
    import openai

    if isinstance(exc, openai.APITimeoutError | TimedOut):
        return Transient("no answer in time", resend=False)
    if isinstance(exc, openai.APIConnectionError):
        return Transient("connection failed or reset")
    if isinstance(exc, openai.APIStatusError) and exc.status_code in RETRYABLE_STATUS \
            and not refuses_format(exc):
        return Transient(f"HTTP {exc.status_code}", retry_after(exc.response.headers))
    return None


def describe(exc: Exception, where: Endpoint, served: Sequence[str] | None = None) -> str:
    """One actionable line for a failed request, with the server's own words when it sent any.

    served: the model names the server lists at /v1/models (asked after a 404), if it answered.
    """
    import openai

    server = f"model server at {where.host}"
    tries = attempts(exc)
    after = f" ({tries} tries)" if tries > 1 else ""
    if isinstance(exc, openai.APITimeoutError | TimedOut):
        return f"{server} did not answer within {where.timeout:g}s: raise --timeout"
    if isinstance(exc, openai.APIConnectionError):
        return unreachable(exc, where.base_url) + after
    if not isinstance(exc, openai.APIStatusError):
        return f"{server} failed: {one_line(str(exc))}"
    said = server_words(exc)
    # Some servers echo the key they refused. A placeholder such as "none" or "ollama" is no
    # secret, and masking it would garble ordinary words.
    if where.secret and len(where.secret) >= MIN_SECRET:
        said = said.replace(where.secret, "***")
    if exc.status_code in (401, 403):
        return (f"{server} refused the API key (HTTP {exc.status_code}: {said}): check --api-key "
                f"(REVIEWER_API_KEY) is set, valid and allowed to use model {where.model!r}")
    if isinstance(exc, openai.NotFoundError):
        return not_found(server, where.model, said, served)
    return f"{server} failed with HTTP {exc.status_code}{after}: {said}"


def not_found(server: str, model: str, said: str, served: Sequence[str] | None) -> str:
    """A 404: the model's name, with the names the server lists when it listed any."""
    if served is None or model in served:
        return (f"{server} has no model {model!r} (HTTP 404: {said}): check --model "
                "(REVIEWER_MODEL), or the path of --base-url (usually ends in /v1)")
    names = ", ".join(served[:MAX_LISTED]) + (", ..." if len(served) > MAX_LISTED else "")
    listed = f"it lists {names}" if served else "it lists no models"
    return (f"{server} has no model {model!r} (HTTP 404: {said}): check --model "
            f"(REVIEWER_MODEL); {listed}")


def unreachable(exc: Exception, base_url: str) -> str:
    """A connection that failed: the URL tried (no credentials), why, and in a container, that
    localhost is the job's own container."""
    parts = urlsplit(base_url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    url = f"{parts.scheme}://{'[' + host + ']' if ':' in host else host}{port}{parts.path}"
    cause = exc.__cause__ or exc.__context__
    why = f" ({one_line(str(cause), 120)})" if cause and str(cause) else ""
    line = (f"cannot reach the model server at {url}{why}: check --base-url "
            "(REVIEWER_BASE_URL) and that the server runs")
    if (host in LOOPBACK or host.startswith("127.")) and in_container():
        line += (f"; in a container or CI job, {host} is the job's own container: use the "
                 "model service's alias or the model server's host name")
    return line


def in_container() -> bool:
    """True inside a Docker/Podman container or a CI job (GitLab sets CI)."""
    return bool(os.environ.get("CI")) or any(Path(f).exists() for f in CONTAINER_FILES)
