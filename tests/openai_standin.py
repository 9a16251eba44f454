"""OpenAI-compatible chat-completions stand-in served over real HTTP (stdlib only).

The real ``openai`` SDK talks to it as to OpenAI, vLLM or llama.cpp, so tests exercise
the SDK's own parsing, error mapping and timeouts instead of a mocked client.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
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


@dataclass
class Reply:
    """One scripted answer to one chat-completion request."""

    content: str = ""
    finish_reason: str = "stop"  # "length" simulates output cut at max_tokens
    status: int = 200  # non-200 -> OpenAI-style error body carrying `error`
    error: str = "error"
    prompt_tokens: int | None = None  # override: a server that truncated the prompt
    completion_tokens: int | None = None
    delay: float = 0.0  # seconds to wait before answering (timeout tests)


@dataclass
class _Answer:
    status: int
    body: JSON
    delay: float = 0.0


def _error(status: int, message: str, code: str | None = None) -> _Answer:
    error = {"message": message, "type": _ERROR_TYPES.get(status, "server_error")}
    return _Answer(status, {"error": {**error, "param": None, "code": code}})


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


def _completion(body: JSON, reply: Reply) -> JSON:
    # Rough 4-characters-per-token estimates unless the reply overrides them.
    prompt = _message_chars(body) // 4 if reply.prompt_tokens is None else reply.prompt_tokens
    completion = (
        len(reply.content) // 4 if reply.completion_tokens is None else reply.completion_tokens
    )
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", ""),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": reply.content},
                "finish_reason": reply.finish_reason,
                "logprobs": None,
            }
        ],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        },
    }


class FakeOpenAI:
    """Threaded HTTP server on 127.0.0.1 answering /v1/chat/completions and /v1/models."""

    def __init__(
        self,
        *,
        api_key: str | None = None,
        reject_formats: Iterable[str] = (),
        reject_status: int = 400,
        models: Iterable[str] = ("test-model",),
    ) -> None:
        self.api_key = api_key
        self.reject_formats = frozenset(reject_formats)
        self.reject_status = reject_status
        self.models = tuple(models)
        self.responder: Callable[[JSON], Reply | str] | None = None
        self.requests: list[JSON] = []
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
        return _Answer(200, {"object": "list", "data": data})

    def _chat(self, body: JSON) -> _Answer:
        # Server-configuration checks come first and never consume a scripted
        # reply: they describe what the server *is*, not a scripted event.
        if body.get("stream"):
            return _error(400, "streaming not supported by the stand-in")
        model = body.get("model")
        if self.models and model not in self.models:
            return _error(404, f"model '{model}' not found", code="model_not_found")
        fmt = body.get("response_format")
        fmt_type = fmt.get("type") if isinstance(fmt, dict) else None
        if fmt_type in self.reject_formats:
            message = f"response_format type {fmt_type} is not supported"
            return _error(self.reject_status, message)
        return self._scripted(body)

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
        if reply.status != 200:
            answer = _error(reply.status, reply.error)
        else:
            answer = _Answer(200, _completion(body, reply))
        answer.delay = reply.delay
        return answer

    def _record(self, body: JSON) -> None:
        with self._lock:
            self.requests.append(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a handler stuck in a delay must not block interpreter exit
    fake: FakeOpenAI


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.1 keep-alive, as real servers do; the SDK pools connections.
    protocol_version = "HTTP/1.1"

    @property
    def fake(self) -> FakeOpenAI:
        return cast(_Server, self.server).fake

    def log_message(self, *args: Any) -> None:
        pass  # keep pytest output clean

    def do_GET(self) -> None:
        if not self.fake._authorized(self.headers.get("Authorization")):
            self._send(_unauthorized())
        elif self.path.rstrip("/") == "/v1/models":
            self._send(self.fake._list_models())
        else:
            self._send(_error(404, f"unknown route: GET {self.path}"))

    def do_POST(self) -> None:
        # Always drain the body so the keep-alive connection stays in sync.
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path.rstrip("/") != "/v1/chat/completions":
            self._send(_error(404, f"unknown route: POST {self.path}"))
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
        data = json.dumps(answer.body).encode()
        try:
            self.send_response(answer.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up (e.g. its timeout fired); that is expected.
            self.close_connection = True
