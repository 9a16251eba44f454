"""OpenAI-compatible chat-completions stand-in served over real HTTP (stdlib only).

The real ``openai`` SDK talks to it as to OpenAI, vLLM, llama.cpp, Ollama or a FastAPI server,
so tests exercise the SDK's own parsing, error mapping and timeouts instead of a mocked client.
What it can mimic, and where each behaviour comes from:

- the answer in ``message.reasoning_content`` (vLLM's reasoning parsers before the rename,
  llama.cpp's llama-server) or ``message.reasoning`` (later vLLM, Ollama), ``content`` null;
- error bodies in each server's shape (``ERROR_STYLES``);
- a prefix cache: ``usage.prompt_tokens_details.cached_tokens`` as OpenAI, vLLM and
  llama-server report it (inside ``prompt_tokens``), or ``prompt_tokens`` counting only the
  uncached tokens with no cached figure, as some Ollama versions did (ollama/ollama#16414);
- a context window that silently drops the start of a longer prompt (Ollama's ``num_ctx``);
- the routes that say how large that window is (``Served``): llama.cpp's ``GET /props``, vLLM's
  ``max_model_len`` in ``GET /v1/models``, Ollama's ``POST /api/show`` and ``GET /api/ps``,
  LiteLLM's ``GET /model/info``, with bodies shaped like theirs (trimmed).
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast

from tests.loopback import Loopback

JSON = dict[str, Any]

# The error "type" real servers send; the SDK keys off the status code, but
# code under test may log or branch on the type.
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "permission_error",
    404: "not_found_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}


# How servers shape an error body. "fastapi" is FastAPI's HTTPException ({"detail": "..."}),
# and its request validation (422, {"detail": [...]}) when it refuses a response_format.
ERROR_STYLES = ("openai", "vllm-legacy", "fastapi", "llama-cpp-python", "ollama", "text")
# How a server counts a prompt whose prefix it has cached (see the module docstring).
CACHE_MODES = ("off", "reported", "uncached-only", "apart")


@dataclass
class Reply:
    """One scripted answer to one chat-completion request."""

    content: str | None = ""  # None: `"content": null`, as with a reasoning parser
    finish_reason: str = "stop"  # "length" simulates output cut at max_tokens
    status: int = 200  # non-200 -> an error body in the server's error_style
    error: str = "error"
    error_style: str | None = None  # this reply's body shape; None: the server's
    prompt_tokens: int | None = None  # override: a server that truncated the prompt
    completion_tokens: int | None = None
    cached_tokens: int | None = None  # override: usage.prompt_tokens_details.cached_tokens
    reasoning: str | None = None  # text of the reasoning field, when there is one
    reasoning_field: str = "reasoning_content"  # or "reasoning" (Ollama, later vLLM)
    body: JSON | None = None  # sent as it is, with status: e.g. an error object with a 200
    delay: float = 0.0  # seconds to wait before answering (timeout tests)
    headers: dict[str, str] = field(default_factory=dict)  # e.g. Retry-After with a 429
    drop: bool = False  # reset the connection instead of answering (after the delay)
    trickle: float = 0.0  # seconds between 16-byte pieces of the body: every read is short


@dataclass
class _Answer:
    status: int
    body: JSON | str  # a str is sent as text/plain
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False
    trickle: float = 0.0


def _error(status: int, message: str, code: str | None = None,
           style: str = "openai") -> _Answer:
    """An error in the body shape a server of this style sends."""
    kind = _ERROR_TYPES.get(status, "server_error")
    if style == "vllm-legacy":  # vLLM before it nested the error under "error"
        return _Answer(status, {"object": "error", "message": message, "type": kind,
                                "param": None, "code": status})
    if style == "fastapi" and status == 422:  # request validation: a list of field errors
        return _Answer(status, {"detail": [{"type": "value_error", "loc": ["body", "messages"],
                                            "msg": message, "input": None}]})
    if style == "fastapi":  # an HTTPException
        return _Answer(status, {"detail": message})
    if style == "ollama":
        return _Answer(status, {"error": message})
    if style == "text":
        return _Answer(status, message)
    error = {"message": message, "type": kind}
    return _Answer(status, {"error": {**error, "param": None, "code": code}})


def _format_refusal(fmt_type: str, status: int, style: str) -> _Answer:
    """A server refusing a response_format type, as each kind of server words it."""
    if style == "fastapi":  # pydantic validating a Literal["text", "json_object"] field
        return _Answer(status, {"detail": [{
            "type": "literal_error", "loc": ["body", "response_format", "type"],
            "msg": "Input should be 'text' or 'json_object'", "input": fmt_type,
            "ctx": {"expected": "'text' or 'json_object'"}}]})
    if style == "llama-cpp-python":  # its route handler reports validation as a 500
        report = (f"1 validation error:\n  {{'type': 'literal_error', 'loc': ('body', "
                  f"'response_format', 'type'), 'msg': \"Input should be 'text' or "
                  f"'json_object'\", 'input': '{fmt_type}'}}\n\n  File \"llama_cpp/server/"
                  "app.py\", line 376, in create_chat_completion\n    POST /v1/chat/completions")
        return _Answer(status, {"error": {"message": report, "type": "internal_server_error",
                                          "param": None, "code": None}})
    return _error(status, f"response_format type {fmt_type} is not supported", style=style)


def _unauthorized() -> _Answer:
    return _error(401, "Incorrect API key provided", code="invalid_api_key")


def _parse(raw: bytes) -> JSON | None:
    try:
        body = json.loads(raw)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _text(content: object) -> str:
    # Content may be a plain string or a list of parts (multimodal format).
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return content if isinstance(content, str) else ""


def _message_chars(body: JSON) -> int:
    messages = body.get("messages") or []
    return sum(len(_text(m.get("content"))) for m in messages if isinstance(m, dict))


def _prompt_text(body: JSON) -> str:
    # Roles and contents in order, as a chat template lays them out for a prefix cache.
    messages = body.get("messages") or []
    return "".join(f"{m.get('role')}\n{_text(m.get('content'))}\n" for m in messages
                   if isinstance(m, dict))


def _shared(text: str, seen: Iterable[str]) -> int:
    """Characters of text's longest prefix shared with any earlier prompt."""
    def common(old: str) -> int:
        return next((i for i, (a, b) in enumerate(zip(text, old, strict=False))
                     if a != b),
                    min(len(text), len(old)))

    return max(map(common, seen), default=0)


@dataclass
class _Count:
    """What the server reports of a prompt: tokens counted, and cached ones if it says."""

    prompt: int
    cached: int | None = None


def _message(reply: Reply) -> JSON:
    message: JSON = {"role": "assistant", "content": reply.content}
    if reply.reasoning is not None:
        message[reply.reasoning_field] = reply.reasoning
    return message


def _completion(body: JSON, reply: Reply, count: _Count) -> JSON:
    # Rough 4-characters-per-token estimates unless the reply overrides them.
    prompt = count.prompt if reply.prompt_tokens is None else reply.prompt_tokens
    cached = count.cached if reply.cached_tokens is None else reply.cached_tokens
    written = len(reply.content or "") + len(reply.reasoning or "")
    completion = written // 4 if reply.completion_tokens is None else reply.completion_tokens
    usage: JSON = {"prompt_tokens": prompt, "completion_tokens": completion,
                   "total_tokens": prompt + completion}
    if cached is not None:
        usage["prompt_tokens_details"] = {"cached_tokens": cached}
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", ""),
        "choices": [
            {
                "index": 0,
                "message": _message(reply),
                "finish_reason": reply.finish_reason,
                "logprobs": None,
            }
        ],
        "usage": usage,
    }


def keywords_of(schema: object) -> set[str]:
    """Every keyword a JSON schema uses, at any depth (a property's name is not one)."""
    if isinstance(schema, list):
        return set().union(*map(keywords_of, schema)) if schema else set()
    if not isinstance(schema, dict):
        return set()
    found = set(schema)
    for key, value in schema.items():
        children = value.values() if key in ("properties", "$defs") and isinstance(
            value, dict) else [value]
        found |= set().union(*map(keywords_of, children)) if children else set()
    return found


SERVERS = ("llamacpp", "vllm", "ollama", "litellm")


@dataclass
class Served:
    """Which server the stand-in plays for the context routes, and what they report."""

    kind: str  # one of SERVERS
    context: int = 8192  # n_ctx per slot, max_model_len, the loaded context or max_input_tokens
    native: int = 32768  # Ollama: the model's own context (model_info "<arch>.context_length")
    loaded: bool = True  # Ollama: the model is listed by /api/ps, with `context`
    num_ctx: int | None = None  # Ollama: PARAMETER num_ctx in the model's Modelfile
    delay: float = 0.0  # seconds before any context route answers


def _context_route(served: Served, method: str, path: str, model: str) -> _Answer | None:
    """A context route's answer in the served kind's shape; None: not one of its routes."""
    kind, route = served.kind, f"{method} {path}"
    if kind == "llamacpp" and route == "GET /props":  # llama.cpp tools/server/README.md
        body: JSON = {"default_generation_settings": {"n_ctx": served.context, "params": {
            "n_predict": -1, "temperature": 0.8}}, "total_slots": 1, "model_path": "m.gguf",
            "chat_template": "{{ messages }}", "build_info": "b6000-standin"}
    elif kind == "ollama" and route == "POST /api/show":  # ollama docs/api.md
        parameters = 'stop "<|im_end|>"' + (f"\nnum_ctx {served.num_ctx}"
                                             if served.num_ctx else "")
        body = {"parameters": parameters, "details": {"family": "qwen2", "format": "gguf"},
                "model_info": {"general.architecture": "qwen2",
                               "qwen2.context_length": served.native},
                "capabilities": ["completion", "tools"]}
    elif kind == "ollama" and route == "GET /api/ps":
        loaded = [{"name": model, "model": model, "size": 5618579456, "size_vram": 5618579456,
                   "expires_at": "2026-01-01T00:00:00Z", "context_length": served.context}]
        body = {"models": loaded if served.loaded else []}
    elif kind == "litellm" and route == "GET /model/info":  # docs.litellm.ai proxy
        body = {"data": [{"model_name": model, "litellm_params": {"model": f"openai/{model}"},
                          "model_info": {"max_input_tokens": served.context,
                                         "max_output_tokens": 4096, "max_tokens": 4096}}]}
    else:
        return None
    return _Answer(200, body, delay=served.delay)


class FakeOpenAI:
    """Threaded HTTP server on 127.0.0.1 answering /v1/chat/completions and /v1/models."""

    def __init__(
        self,
        *,
        api_key: str | None = None,
        reject_formats: Iterable[str] = (),
        reject_status: int = 400,
        models: Iterable[str] = ("test-model",),
        error_style: str = "openai",
        cache: str = "off",
        context_window: int | None = None,
        served: Served | None = None,
        schema_keywords: Iterable[str] | None = None,
    ) -> None:
        assert error_style in ERROR_STYLES and cache in CACHE_MODES
        self.api_key = api_key
        self.reject_formats = frozenset(reject_formats)
        # The JSON-schema keywords its grammar engine supports (None: all); a json_schema with
        # another is refused as vLLM with a forced xgrammar backend refuses it (400,
        # vllm/v1/structured_output/backend_xgrammar.py, has_xgrammar_unsupported_json_features).
        self.schema_keywords = None if schema_keywords is None else frozenset(schema_keywords)
        self.reject_status = reject_status
        self.models = tuple(models)
        self.error_style = error_style
        self.cache = cache
        self.context_window = context_window  # tokens kept: the end of a longer prompt
        assert served is None or served.kind in SERVERS
        self.served = served  # which server's context routes it answers, if any
        self.probes: list[str] = []  # "METHOD /path" of each context route asked, in order
        self._prompts: list[str] = []  # what the prefix cache holds
        self.responder: Callable[[JSON], Reply | str] | None = None
        self.requests: list[JSON] = []
        self.arrivals: list[float] = []  # time.monotonic() of each request recorded
        self.url = ""
        self._queue: deque[Reply] = deque()
        self._lock = threading.Lock()
        # Set on stop() so a delayed answer stops sleeping instead of pinning a thread.
        self._stopping = threading.Event()
        self._loop: Loopback | None = None

    def queue(self, *replies: Reply | str) -> None:
        with self._lock:
            self._queue.extend(r if isinstance(r, Reply) else Reply(content=r) for r in replies)

    def start(self) -> FakeOpenAI:
        self._stopping.clear()
        server = _Server(("127.0.0.1", 0), _Handler)
        server.fake = self
        self._loop = Loopback(server)
        self.url = f"http://127.0.0.1:{self._loop.port}/v1"
        self._loop.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._loop is not None:
            self._loop.stop()
            self._loop = None

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- request handling (called from server threads) ---------------------

    def _authorized(self, authorization: str | None) -> bool:
        return self.api_key is None or authorization == f"Bearer {self.api_key}"

    def _list_models(self) -> _Answer:
        now = int(time.time())
        data = [
            {"id": m, "object": "model", "created": now, "owned_by": "standin"} for m in self.models
        ]
        if self.served is not None and self.served.kind == "vllm":  # vllm/entrypoints/openai
            for entry in data:
                entry.update(owned_by="vllm", root=entry["id"], parent=None,
                             max_model_len=self.served.context, permission=[])
        delay = self.served.delay if self.served is not None else 0.0
        return _Answer(200, {"object": "list", "data": data}, delay=delay)

    def _context(self, method: str, path: str) -> _Answer | None:
        with self._lock:
            self.probes.append(f"{method} {path}")
        if self.served is None:
            return None
        return _context_route(self.served, method, path, self.models[0] if self.models else "m")

    def _chat(self, body: JSON) -> _Answer:
        # Server-configuration checks come first and never consume a scripted
        # reply: they describe what the server *is*, not a scripted event.
        style = self.error_style
        if body.get("stream"):
            return _error(400, "streaming not supported by the stand-in", style=style)
        model = body.get("model")
        if self.models and model not in self.models:
            return _error(404, f"model '{model}' not found", code="model_not_found", style=style)
        fmt = body.get("response_format")
        fmt_type = fmt.get("type") if isinstance(fmt, dict) else None
        if isinstance(fmt_type, str) and fmt_type in self.reject_formats:
            return _format_refusal(fmt_type, self.reject_status, style)
        if fmt_type == "json_schema" and self._unsupported(fmt):
            return _error(400, "The provided JSON schema contains features not supported by "
                          "xgrammar.", style=style)
        return self._scripted(body)

    def _unsupported(self, fmt: JSON) -> bool:
        """Whether the json_schema format uses a keyword this server's engine lacks."""
        if self.schema_keywords is None:
            return False
        schema = (fmt.get("json_schema") or {}).get("schema") or {}
        return bool(keywords_of(schema) - self.schema_keywords)

    def _count(self, body: JSON) -> _Count:
        """The prompt as this server counts it; the prompt then joins its prefix cache."""
        tokens = _message_chars(body) // 4
        if self.context_window is not None:
            tokens = min(tokens, self.context_window)
        if self.cache == "off":  # no prefix bookkeeping: it compares with every earlier prompt
            return _Count(tokens)
        text = _prompt_text(body)
        with self._lock:
            shared = _shared(text, self._prompts)
            self._prompts.append(text)
        cached = min(tokens, shared // 4)
        if self.cache == "reported":
            return _Count(tokens, cached)
        if self.cache == "uncached-only":
            return _Count(tokens - cached)
        if self.cache == "apart":
            return _Count(tokens - cached, cached)
        return _Count(tokens)

    def _next_reply(self, body: JSON) -> Reply | str | None:
        with self._lock:
            if self._queue:
                return self._queue.popleft()
        # Outside the lock: a slow responder must not block other requests.
        return self.responder(body) if self.responder is not None else None

    def _scripted(self, body: JSON) -> _Answer:
        try:
            reply = self._next_reply(body)
        except Exception as exc:
            # Surface a buggy responder as a 500 the test can read, not a dropped connection.
            return _error(500, f"responder raised {exc!r}")
        if reply is None:
            return _error(500, "no scripted reply")
        if isinstance(reply, str):
            reply = Reply(content=reply)
        if reply.body is not None:
            answer = _Answer(reply.status, reply.body)
        elif reply.status != 200:
            answer = _error(reply.status, reply.error, style=reply.error_style or self.error_style)
        else:
            answer = _Answer(200, _completion(body, reply, self._count(body)))
        answer.delay, answer.headers, answer.drop = reply.delay, reply.headers, reply.drop
        answer.trickle = reply.trickle
        return answer

    def _record(self, body: JSON) -> None:
        with self._lock:
            self.requests.append(body)
            self.arrivals.append(time.monotonic())


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a handler stuck in a delay must not block interpreter exit
    fake: FakeOpenAI


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.1 keep-alive, as real servers do; the SDK pools connections.
    protocol_version = "HTTP/1.1"
    # TCP_NODELAY, as GitLab (puma, nginx) and model servers (uvicorn, llama-server) set it:
    # http.server sends headers and body apart, and Nagle's algorithm would hold the body for
    # the client's delayed ACK, ~40 ms a request that no real server costs.
    disable_nagle_algorithm = True

    @property
    def fake(self) -> FakeOpenAI:
        return cast(_Server, self.server).fake

    def log_message(self, *args: Any) -> None:
        pass  # keep pytest output clean

    def do_GET(self) -> None:
        if not self.fake._authorized(self.headers.get("Authorization")):
            self._send(_unauthorized())
        elif self.path.rstrip("/") == "/v1/models":
            self.fake._context("GET", "/v1/models")
            self._send(self.fake._list_models())
        else:
            answer = self.fake._context("GET", self.path.rstrip("/"))
            self._send(answer or _error(404, f"unknown route: GET {self.path}"))

    def do_POST(self) -> None:
        # Always drain the body so the keep-alive connection stays in sync.
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path.rstrip("/") != "/v1/chat/completions":
            answer = self.fake._context("POST", self.path.rstrip("/"))
            self._send(answer or _error(404, f"unknown route: POST {self.path}"))
            return
        body = _parse(raw)
        if body is None:
            self._send(_error(400, "request body is not a JSON object"))
            return
        self.fake._record(body)  # recorded even if rejected below, so tests can inspect it
        authorized = self.fake._authorized(self.headers.get("Authorization"))
        self._send(self.fake._chat(body) if authorized else _unauthorized())

    def _send(self, answer: _Answer) -> None:
        if answer.delay > 0 and self.fake._stopping.wait(answer.delay):
            self.close_connection = True  # server is stopping; drop the answer
            return
        if answer.drop:  # SO_LINGER 0: closing sends a reset, not an orderly end
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
            self.close_connection = True
            return
        text = isinstance(answer.body, str)
        data = (answer.body if isinstance(answer.body, str) else json.dumps(answer.body)).encode()
        try:
            self.send_response(answer.status)
            self.send_header("Content-Type", "text/plain; charset=utf-8" if text
                             else "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.end_headers()
            step = 16 if answer.trickle else len(data) or 1
            for start in range(0, len(data), step):
                self.wfile.write(data[start:start + step])
                self.wfile.flush()
                if answer.trickle and self.fake._stopping.wait(answer.trickle):
                    return
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up (e.g. its timeout fired); that is expected.
            self.close_connection = True
