"""The model's real context window, asked of the server once per run, and the budget it allows.

What each server says, tried in this order (the first that answers wins):

- vLLM: ``GET /v1/models`` lists ``data[].max_model_len``, the model's whole context: prompt
  **and** ``max_tokens`` must fit in it, or the request is refused with a 400
  (https://docs.vllm.ai/en/latest/serving/openai_compatible_server.html, ``--max-model-len``).
  llama.cpp, Ollama and LiteLLM answer this route too, without the field.
- llama.cpp's llama-server: ``GET /props`` at the server root (base_url without ``/v1``) gives
  ``default_generation_settings.n_ctx``, the context of one slot, i.e. ``--ctx-size`` divided
  by ``--parallel`` (https://github.com/ggml-org/llama.cpp/blob/master/tools/server/README.md).
  Asked before Ollama's routes because llama-server also serves an Ollama-compatible shim.
- Ollama: ``POST /api/show {"model": name}`` gives ``model_info["<arch>.context_length"]`` (what
  the model supports) and, in ``parameters``, ``num_ctx`` only when a Modelfile sets it;
  ``GET /api/ps`` gives ``models[].context_length``, the context a loaded model really runs with
  (https://github.com/ollama/ollama/blob/main/docs/api.md). When the model is not loaded, the
  context it will get is Ollama's default (``OLLAMA_CONTEXT_LENGTH``, else 4,096 below 24 GiB of
  VRAM, 32,768 up to 48 GiB, 262,144 above, since 0.15.5; 2,048 in older versions:
  https://github.com/ollama/ollama/blob/main/docs/context-length.mdx): we assume 4,096 and say
  so. Its OpenAI endpoint drops the start of a longer prompt without an error.
- LiteLLM's proxy: ``GET /model/info`` gives ``data[].model_info.max_input_tokens`` for each
  ``model_name`` (https://docs.litellm.ai/docs/proxy/model_management): a limit on the prompt
  alone.

Probing never raises: a server that answers none of these (OpenAI, a proxy) gets ``None`` and
the documented default budget. Only the standard library is used: the HTTP client the openai SDK
brings has changed its name between releases (httpx, httpx2), and urllib costs no import time.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

log = logging.getLogger(__name__)

TIMEOUT = 3.0  # seconds for all probes together: a hint, not worth a long wait
OLLAMA_DEFAULT_CONTEXT = 4096  # what an unloaded Ollama model will most likely get (see above)
MIN_OUTPUT = 256  # an answer smaller than this cannot hold a review
# A review of one request's diff: a summary and a handful of findings of ~80 tokens each. A
# small window reserves this much (or a quarter of it, if more), not the whole --max-output-
# tokens, so the diff keeps room; the brevity retry (llm.py) covers a longer answer.
REVIEW_OUTPUT = 1024
# Our token counts are estimates (characters / 4) and chat templates add tokens of their own;
# a margin of the window keeps an underestimate from overflowing it.
MARGIN_SHARE = 20  # 1/20 = 5 %
MIN_MARGIN = 64


@dataclass(frozen=True)
class Window:
    """A model's context as its server reported it.

    tokens: the context prompt and output share, or the prompt's alone when input_only.
    source: where the figure came from, e.g. "llama.cpp /props n_ctx", for messages.
    note: something to tell the user once, loudly (Ollama's smaller context), or None.
    """

    tokens: int
    source: str
    note: str | None = None
    input_only: bool = False


class _Unreachable(Exception):
    """The server did not answer at all: no further probe can succeed."""


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # A redirect could carry the Authorization header to another host; a probe needs none.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


@dataclass
class _Prober:
    """GET/POST JSON on one server, all within one deadline; None for any failed answer."""

    root: str  # scheme://host[:port][/path without /v1]
    base: str  # base_url, without a trailing slash
    api_key: str | None
    deadline: float

    def call(self, url: str, payload: dict[str, Any] | None = None) -> Any:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise _Unreachable("out of time")
        data = json.dumps(payload).encode() if payload is not None else None
        # S310: detect() only builds http(s) URLs.
        request = urllib.request.Request(url, data=data,  # noqa: S310
                                         method="POST" if data else "GET")
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if self.api_key:  # only ever to URLs built from base_url: the same scheme, host, port
            request.add_header("Authorization", f"Bearer {self.api_key}")
        opener = urllib.request.build_opener(_NoRedirect)
        try:
            with opener.open(request, timeout=remaining) as response:
                return json.loads(response.read(1_000_000))
        except urllib.error.HTTPError as exc:
            exc.close()
            log.info("context probe %s: HTTP %d", _path(url), exc.code)
            return None
        except (urllib.error.URLError, OSError) as exc:  # refused, reset, timed out
            log.info("context probe %s: %s", _path(url), getattr(exc, "reason", exc))
            raise _Unreachable(str(exc)) from None
        except ValueError:  # not JSON: some other server's page
            log.info("context probe %s: not JSON", _path(url))
            return None


def detect(base_url: str, api_key: str | None, model: str,
           timeout: float = TIMEOUT) -> Window | None:
    """The model's context window as its server reports it; None when no server says.

    One attempt per route, no retries, all within `timeout` seconds; a server that does not
    answer at all ends the probing at once (the review's own request will report it).
    """
    base = base_url.rstrip("/")
    parts = urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None  # Settings rejects these; urllib would also open file: URLs
    root = urlunsplit(parts._replace(path=parts.path.removesuffix("/v1"), query="",
                                     fragment=""))
    prober = _Prober(root, base, api_key, time.monotonic() + timeout)
    for probe in (_vllm, _llamacpp, _ollama, _litellm):
        try:
            window = probe(prober, model)
        except _Unreachable:
            break
        if window is not None:
            log.info("context window: %d tokens (%s)", window.tokens, window.source)
            return window
    log.info("the model server did not say its context window")
    return None


def _vllm(prober: _Prober, model: str) -> Window | None:
    entries = _entries(prober.call(f"{prober.base}/models"))
    sized = [e for e in entries if _int(e.get("max_model_len"))]
    chosen = next((e for e in sized if model in (e.get("id"), e.get("root"))), None)
    if chosen is None and len(sized) == 1:  # one model served: the name may be an alias
        chosen = sized[0]
    if chosen is None:
        return None
    return Window(_int(chosen.get("max_model_len")) or 0, "vLLM /v1/models max_model_len")


def _llamacpp(prober: _Prober, model: str) -> Window | None:
    props = prober.call(f"{prober.root}/props")
    settings = props.get("default_generation_settings") if isinstance(props, dict) else None
    n_ctx = _int(settings.get("n_ctx")) if isinstance(settings, dict) else None
    return Window(n_ctx, "llama.cpp /props n_ctx (per slot)") if n_ctx else None


def _ollama(prober: _Prober, model: str) -> Window | None:
    shown = prober.call(f"{prober.root}/api/show", {"model": model})
    if not isinstance(shown, dict) or not isinstance(shown.get("model_info"), dict):
        return None
    info: dict[str, Any] = shown["model_info"]
    native = _int(info.get(f"{info.get('general.architecture')}.context_length"))
    modelfile = _num_ctx(shown.get("parameters"))
    loaded = _loaded_context(prober.call(f"{prober.root}/api/ps"), model)
    if loaded:
        tokens, source = loaded, "Ollama /api/ps context_length (loaded)"
    elif modelfile:
        tokens, source = modelfile, "Ollama /api/show num_ctx (Modelfile)"
    else:
        tokens, source = OLLAMA_DEFAULT_CONTEXT, "Ollama default (model not loaded)"
    if native:
        tokens = min(tokens, native)
    return Window(tokens, source, _ollama_note(model, tokens, native, assumed=not (
        loaded or modelfile)))


def _ollama_note(model: str, tokens: int, native: int | None, *, assumed: bool) -> str | None:
    """The warning for a context smaller than the model supports, or for one we had to assume."""
    fix = ("its OpenAI endpoint cuts longer prompts silently; raise OLLAMA_CONTEXT_LENGTH or "
           "set num_ctx in a Modelfile")
    will = "will probably run" if assumed else "will run"
    why = (" (the model is not loaded, so this is Ollama's default below 24 GiB of VRAM; "
           "OLLAMA_CONTEXT_LENGTH may differ)") if assumed else ""
    if native and tokens < native:
        return (f"Ollama {will} {model} with a {tokens:,}-token context{why} although the model "
                f"supports {native:,}: {fix}")
    if assumed and not native:
        return f"Ollama {will} {model} with a {tokens:,}-token context{why}"
    return None


def _litellm(prober: _Prober, model: str) -> Window | None:
    entries = _entries(prober.call(f"{prober.root}/model/info"))
    for entry in entries:
        info = entry.get("model_info")
        limit = _int(info.get("max_input_tokens")) if isinstance(info, dict) else None
        if entry.get("model_name") == model and limit:
            return Window(limit, "LiteLLM /model/info max_input_tokens", input_only=True)
    return None


def input_budget(window: Window | None, max_output_tokens: int, flag: int | None,
                 default: int) -> tuple[int, int]:
    """(max input tokens, output reservation) for each request, so both fit the window.

    flag: --max-input-tokens when given explicitly; it wins, and only the output shrinks to
    what the window leaves (never below MIN_OUTPUT: a vLLM server refuses the rest with a 400,
    which the user then sees). default: the documented budget when no server said.
    Without the flag, the output reservation is what a review needs (REVIEW_OUTPUT, or a
    quarter of the window if more, never more than max_output_tokens nor half the window), so
    a diff still fits beside it in a small window: at Ollama's default 4,096, 1,024 tokens.
    """
    if window is None:
        return (flag if flag is not None else default), max_output_tokens
    usable = window.tokens - max(MIN_MARGIN, window.tokens // MARGIN_SHARE)
    if window.input_only:  # LiteLLM: the limit is the prompt's alone
        return (flag if flag is not None else usable), max_output_tokens
    if flag is not None:
        return flag, min(max_output_tokens, max(MIN_OUTPUT, usable - flag))
    output = min(max_output_tokens,
                 max(MIN_OUTPUT, usable // 4, min(REVIEW_OUTPUT, usable // 2)))
    return max(usable - output, 1), output


def _entries(body: Any) -> list[dict[str, Any]]:
    data = body.get("data") if isinstance(body, dict) else None
    return [e for e in data if isinstance(e, dict)] if isinstance(data, list) else []


def _loaded_context(body: Any, model: str) -> int | None:
    models = body.get("models") if isinstance(body, dict) else None
    # Ollama names a model without a tag "<name>:latest".
    names = {model, model if ":" in model else f"{model}:latest"}
    for entry in models if isinstance(models, list) else []:
        if isinstance(entry, dict) and names & {entry.get("name"), entry.get("model")}:
            return _int(entry.get("context_length"))
    return None


def _num_ctx(parameters: Any) -> int | None:
    # /api/show "parameters" is the Modelfile's PARAMETER lines: "num_ctx 8192\nstop ..."
    for line in parameters.splitlines() if isinstance(parameters, str) else []:
        name, _, value = line.strip().partition(" ")
        if name == "num_ctx":
            return _int(value.strip())
    return None


def _int(value: Any) -> int | None:
    """A positive whole number from a JSON value, else None (servers send odd things)."""
    if isinstance(value, bool):
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def _path(url: str) -> str:
    return urlsplit(url).path  # logs name the route, never a credential in the URL
