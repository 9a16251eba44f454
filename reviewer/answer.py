"""The model's reply as text -> ModelAnswer: JSON first, then the object inside whatever wraps it.

Replies are untrusted bytes. Small models wrap the JSON in Markdown fences, chatter or <think>
blocks, and the JSON itself may hold fenced code with braces in its strings; so the reply is read
as JSON first, and only when it is not JSON as a whole is the object looked for inside it.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from typing import Any

from pydantic import ValidationError

from reviewer.model import ModelAnswer

THINK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
THINK_END = re.compile(r"</think>", re.IGNORECASE)
# A lone surrogate (a JSON "\ud800") cannot be written as UTF-8; a NUL is refused by GitLab's
# database; other C0 controls only garble a terminal. Tab, newline and carriage return stay.
SURROGATE = re.compile("[\ud800-\udfff]")
CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
MAX_DEPTH = 16  # an answer nests 4 deep (answer, findings, finding, value)


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


def _finite(text: str) -> float:
    # 1e999 parses as infinity, which no number field can take (rounding it overflows).
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of range")
    return value


# strict=False: raw newlines and tabs inside strings are common and harmless.
_DECODER = json.JSONDecoder(strict=False, parse_constant=_reject_constant, parse_float=_finite)


def clean_text(text: str) -> str:
    """text without lone surrogates (now U+FFFD) and control characters other than \\t\\n\\r."""
    return SURROGATE.sub("\ufffd", CONTROL.sub("", text))


def _clean(value: Any, depth: int = 0) -> Any:
    # The bound keeps the walk far from Python's recursion limit, which JSON nested a few
    # hundred deep (still decodable) would otherwise reach.
    if depth > MAX_DEPTH:
        raise ValueError(f"does not match the schema: nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, list):
        return [_clean(v, depth + 1) for v in value]
    if isinstance(value, dict):
        return {clean_text(str(k)): _clean(v, depth + 1) for k, v in value.items()}
    return value


def _decode(text: str) -> Any:
    """text as one JSON value, or None (deeply nested input raises RecursionError: also None)."""
    try:
        return _DECODER.decode(text)
    except (ValueError, RecursionError):
        return None


def _objects(text: str) -> list[dict[str, Any]]:
    """The top-level JSON objects in text, in order (an object inside another is not listed)."""
    found = []
    start = text.find("{")
    while start != -1:
        try:
            value, end = _DECODER.raw_decode(text, start)
        except (ValueError, RecursionError):
            start = text.find("{", start + 1)
            continue
        found.append(value)  # a value that starts with "{" is an object
        start = text.find("{", end)
    return found


def _outside_thinking(text: str) -> str:
    # Some servers strip the opening tag of the reasoning but keep the closing one.
    return THINK_END.split(THINK.sub("", text))[-1]


def holds_json(text: str) -> bool:
    """Whether text is, or contains, a JSON object."""
    return isinstance(_decode(text.strip()), dict) or bool(_objects(text))


def _answers(text: str) -> bool:
    try:
        parse_answer(text)
    except ValueError:
        return False
    return True


def locate(fields: Iterable[tuple[str, str | None]]) -> tuple[str, str]:
    """(name, text) of the field that holds the answer among (name, text) in preference order.

    The first field holding a valid answer wins; else the first holding a JSON object (for the
    repair request to show the model); else the first with any text; else ("content", "").
    """
    texts = [(name, clean_text(text)) for name, text in fields if text and text.strip()]
    for holds in (_answers, holds_json):
        for name, text in texts:
            if holds(text):
                return name, text
    return texts[0] if texts else ("content", "")


def parse_answer(content: str) -> ModelAnswer:
    """Validate a reply as the model's answer; ValueError says what is wrong.

    Order: the whole reply as JSON; else the objects outside <think> blocks (fences and chatter
    around them are skipped as text), the last one that validates first since a model's later
    words are its final ones; else the objects inside the reasoning.
    """
    text = clean_text(content)
    whole = _decode(text.strip())
    if isinstance(whole, dict):
        return _validate(whole)
    body = _outside_thinking(text)
    found = _objects(body) or _objects(text)
    for candidate in reversed(found):
        try:
            return _validate(candidate)
        except ValueError:
            continue
    raise ValueError(_why_not(body, found))


def _why_not(body: str, found: list[dict[str, Any]]) -> str:
    start, end = body.find("{"), body.rfind("}")
    if start != -1 and end > start:
        try:
            _DECODER.decode(body[start:end + 1])
        except ValueError as exc:  # JSONDecodeError says where; a NaN or 1e999 says what
            return f"invalid JSON: {exc}"
        except RecursionError:
            return "invalid JSON: nested too deeply"
    if not found:
        return "the reply contains no JSON object"
    largest = max(found, key=lambda o: len(json.dumps(o)))
    try:
        _validate(largest)
    except ValueError as exc:
        return str(exc)
    return "the reply contains no valid answer"  # not reached: every candidate failed


def _validate(data: dict[str, Any]) -> ModelAnswer:
    data = _clean(data)
    try:
        return ModelAnswer.model_validate(data)
    except ValidationError as exc:
        errors = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                           for e in exc.errors()[:5])
        raise ValueError(f"does not match the schema: {errors}") from None
