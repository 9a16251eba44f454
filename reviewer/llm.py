"""The model call: structured-output negotiation, validation, one repair retry."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections import deque
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import openai

from reviewer.answer import locate, parse_answer
from reviewer.clock import Clock
from reviewer.errors import DeadlineExceeded, ModelError
from reviewer.llm_errors import (
    Endpoint,
    describe,
    one_line,
    refuses_format,
    refuses_schema_features,
    transient,
    words_of,
)
from reviewer.model import (
    MAX_FINDINGS_PER_ANSWER,
    ModelAnswer,
    Usage,
    answer_schema,
    bare_answer_schema,
)
from reviewer.prompt import Request, repair_message, schema_into
from reviewer.retry import BASE, Policy, within
from reviewer.seen import check_seen, common_prefix, prompt_text, system_chars
from reviewer.server import ServerFacts

__all__ = ["ModelClient", "parse_answer"]

log = logging.getLogger(__name__)
RECENT_PROMPTS = 32
BRIEF_FINDINGS = 5
BREVITY = (f"Your answer was too long and was cut off. Answer again with the JSON object only, "
           f"briefly: at most {BRIEF_FINDINGS} findings, the most important ones, each message "
           "under 50 words, the summary under 80 words.")
# Where servers put the answer besides `content`: vLLM's reasoning parsers (`reasoning_content`,
# renamed `reasoning` in later versions), llama.cpp's llama-server, Ollama and some proxies.
REASONING_FIELDS = ("reasoning_content", "reasoning")
LIST_TIMEOUT = 5.0  # seconds for GET /v1/models after a 404: a hint, not worth a long wait


class _CutOff(Exception):
    """The server stopped at max_tokens: the answer is incomplete."""


@dataclass
class ModelClient:
    """One model endpoint; remembers which structured-output mode it accepts.

    timeout: seconds for one answer, end to end; a prompt that timed out is not sent again.
    retries and clock bound each request (reviewer.retry: 429, 5xx and lost connections are
    retried; no request starts after the deadline). backoff: about the first retry's wait.
    The openai SDK's own retries are off (max_retries=0), so the policy is the only one.
    """

    base_url: str
    api_key: str | None
    model: str
    max_output_tokens: int
    timeout: float
    host: str
    retries: int = 3
    clock: Clock = field(default_factory=Clock)
    backoff: float = BASE
    facts: ServerFacts = field(default_factory=ServerFacts)  # the mode, shared by reviews
    usage: Usage = field(default_factory=Usage)
    _client: openai.OpenAI | None = None
    # Every prompt sent (or in flight), as a server reads it: which prefixes it may have seen.
    # Only the latest prompts: a prefix the server still caches is a recent one, and comparing
    # each prompt with every earlier one would grow with the square of a large change.
    _sent: deque[str] = field(default_factory=lambda: deque(maxlen=RECENT_PROMPTS), repr=False)
    _served: list[str] | None = field(default=None, repr=False)  # GET /v1/models
    _listed: bool = field(default=False, repr=False)  # asked once, answered or not
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _this: threading.local = field(default_factory=threading.local, repr=False)  # per request

    def __post_init__(self) -> None:
        self.policy = Policy(self.retries, self.clock, base=self.backoff)

    @property
    def mode(self) -> str:
        """The response_format type in use (review.json's model.structured_output)."""
        return self.facts.mode.removesuffix("_bare")

    def client(self) -> openai.OpenAI:
        if self._client is None:
            # Local servers need no key, but the SDK insists on one. max_retries=0: the SDK
            # would re-send a timed-out prompt twice (openai/_base_client.py, DEFAULT_MAX_RETRIES).
            self._client = openai.OpenAI(base_url=self.base_url, api_key=self.api_key or "none",
                                         timeout=self.timeout, max_retries=0)
        return self._client

    def review(self, request: Request, spent: Usage | None = None) -> ModelAnswer:
        """Ask for one review; validate it, with one repair retry on an invalid answer.

        spent, when given, gets this request's own tokens added, its follow-ups (a repair, a
        shorter answer) included, and also when it fails: self.usage sums every request.
        Raises ModelError when the server fails for good or answers nothing usable, and
        DeadlineExceeded when the deadline stops it (before a request, or cutting one short).
        """
        self._this.spent = spent  # requests run in parallel threads: each counts its own
        messages = request.as_openai()
        try:
            content = self._complete(messages)
        except _CutOff:
            # Small models sometimes ramble until the limit; one shorter answer is worth a try.
            log.info("answer cut off at %d tokens; asking for a shorter one",
                     self.max_output_tokens)
            messages += [{"role": "user", "content": BREVITY}]
            content = self._finish(messages, BRIEF_FINDINGS)
        try:
            return parse_answer(content)
        except ValueError as exc:
            error = str(exc)
            log.info("invalid answer (%s); asking the model to repair it", error)
        messages += [{"role": "assistant", "content": content},
                     {"role": "user", "content": repair_message(error)}]
        content = self._finish(messages)
        try:
            return parse_answer(content)
        except ValueError as exc:
            raise ModelError(f"model {self.model} returned an invalid review twice ({exc}); "
                             "try a larger or instruction-tuned model") from None

    def _finish(self, messages: list[dict[str, Any]],
                max_findings: int = MAX_FINDINGS_PER_ANSWER) -> str:
        """A completion that must not be cut off: the last try."""
        try:
            return self._complete(messages, max_findings)
        except _CutOff:
            raise ModelError(f"the model's answer was cut off at {self.max_output_tokens} "
                             "tokens: raise --max-output-tokens (REVIEWER_MAX_OUTPUT_TOKENS)") \
                from None

    def _complete(self, messages: list[dict[str, Any]],
                  max_findings: int = MAX_FINDINGS_PER_ANSWER) -> str:
        while True:
            # One mode per attempt, read once: requests run in parallel and may step it down.
            mode = self.facts.mode
            sent = self._with_mode(messages, mode)
            prompt, shared = self._remember(sent)
            stable = system_chars(sent)
            try:
                response = self.policy.call(partial(self._ask, sent, max_findings, mode),
                                            f"get an answer from the model server at {self.host}",
                                            transient)
                break
            except openai.APIStatusError as exc:
                self._forget(prompt)  # refused: the server holds none of it
                if mode == "plain" or not refuses_format(exc):
                    raise self._error(exc) from None
                self._step_down(mode, exc)
            except Exception as exc:
                self._forget(prompt)
                if isinstance(exc, ModelError | DeadlineExceeded):
                    raise
                raise self._error(exc) from None
        return self._accept(response, prompt, shared, stable)

    def _forget(self, prompt: str) -> None:
        with self._lock, contextlib.suppress(ValueError):  # already pushed out, perhaps
            self._sent.remove(prompt)

    def _step_down(self, refused: str, exc: openai.APIStatusError) -> None:
        """The server cannot do this mode: a simpler one, for every later request too (once,
        however many parallel requests were refused it). A json_schema refused for what the
        schema holds (a grammar engine without string or item bounds) is tried bare first;
        refused as a type, it goes straight to json_object."""
        bare = refused == "json_schema" and refuses_schema_features(exc)
        stepped = self.facts.step_down(refused, "json_schema_bare" if bare else "json_object")
        if stepped is not None:
            log.info("%s refused %s structured output; trying %s", self.host, refused, stepped)

    def _ask(self, sent: list[dict[str, Any]], max_findings: int, mode: str) -> Any:
        """One request, bounded end to end by --timeout or what is left before the deadline."""
        seconds = self.policy.budget(self.timeout)
        client = self.client()
        return within(seconds, lambda: client.chat.completions.create(
            model=self.model, messages=sent,  # type: ignore[arg-type]
            max_tokens=self.max_output_tokens, temperature=0.1,
            extra_body=self._format(max_findings, mode), timeout=seconds,
        ))

    def _remember(self, sent: list[dict[str, Any]]) -> tuple[str, int]:
        """The prompt as a server reads it, and how much of it this client sent before.

        Noted before the answer comes, so requests in flight together share their prefix.
        """
        prompt = prompt_text(sent)
        with self._lock:  # other requests note theirs at the same time
            recent = list(self._sent)
            self._sent.append(prompt)
        shared = max((common_prefix(prompt, old) for old in recent), default=0)
        return prompt, shared

    def _error(self, exc: Exception) -> ModelError:
        served = self._models() if isinstance(exc, openai.NotFoundError) else None
        where = Endpoint(self.host, self.base_url, self.model, self.timeout, self.api_key)
        return ModelError(describe(exc, where, served))

    def _models(self) -> list[str] | None:
        """The model names the server lists at GET /v1/models, asked once; None if it fails."""
        if not self._listed and not self.clock.expired():
            self._listed = True
            try:
                seconds = self.policy.budget(LIST_TIMEOUT)
                page = self.client().with_options(timeout=seconds).models.list()
                self._served = sorted(str(m.id) for m in page.data)
            except (openai.OpenAIError, ValueError, TypeError, AttributeError):
                log.info("%s did not list its models", self.host)
        return self._served

    def _with_mode(self, messages: list[dict[str, Any]], mode: str) -> list[dict[str, Any]]:
        # Without a response_format the schema itself has to be in the instructions.
        if mode != "plain" or messages[0]["role"] != "system":
            return messages
        system = schema_into(messages[0]["content"], answer_schema())
        return [{"role": "system", "content": system}, *messages[1:]]

    def _format(self, max_findings: int, mode: str) -> dict[str, Any]:
        if mode == "plain":  # the schema is in the system message instead
            return {}
        schema = bare_answer_schema() if mode == "json_schema_bare" else \
            answer_schema(max_findings)
        if mode == "json_object":
            return {"response_format": {"type": "json_object", "schema": schema}}
        return {"response_format": {"type": "json_schema", "json_schema": {
            "name": "review", "schema": schema}}}

    def _accept(self, response: Any, prompt: str, shared: int, stable: int) -> str:
        # A server may answer 200 with an error object and no choices (vLLM behind some proxies).
        choices = getattr(response, "choices", None)
        if not choices:
            said = words_of(getattr(response, "model_extra", None) or {})
            raise ModelError(f"model server at {self.host} returned no choices"
                             + (f": {one_line(said)}" if said else ""))
        self._count(response, prompt, shared, stable)
        choice = choices[0]
        if choice.finish_reason == "length":
            raise _CutOff
        where, text = locate(_answer_fields(choice.message))
        if where != "content":
            log.info("the answer was in message.%s, not message.content", where)
        return text

    def _count(self, response: Any, prompt: str, shared: int, stable: int) -> None:
        usage = response.usage
        with self._lock:  # requests answer from several threads
            self.usage.requests += 1
            if usage is not None:
                self.usage.prompt_tokens += usage.prompt_tokens or 0
                self.usage.completion_tokens += usage.completion_tokens or 0
        spent: Usage | None = getattr(self._this, "spent", None)
        if spent is not None:  # this thread's request alone: no lock needed
            spent.requests += 1
            spent.prompt_tokens += (usage.prompt_tokens or 0) if usage else 0
            spent.completion_tokens += (usage.completion_tokens or 0) if usage else 0
        if usage is None:
            return
        details = getattr(usage, "prompt_tokens_details", None)
        cached = getattr(details, "cached_tokens", None) or 0
        # A follow-up (repair, shorter answer) or a later request of the run repeats a prefix
        # the server may have cached; only the rest must show in its count.
        # The system message is the same in every run with this spec (prompt.system): a server
        # may hold it from an earlier run, so it need not show in the count either.
        check_seen(usage.prompt_tokens or 0, cached, len(prompt), shared, stable)


def _answer_fields(message: Any) -> list[tuple[str, str | None]]:
    # The SDK keeps fields it does not know in model_extra.
    extra = getattr(message, "model_extra", None) or {}
    fields = [(name, extra.get(name)) for name in REASONING_FIELDS]
    return [("content", message.content),
            *((name, text) for name, text in fields if isinstance(text, str))]
