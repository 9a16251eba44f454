"""The JSON that `eval run` writes and `eval merge` and `eval compare` read (schema_version 1).

Every run of every case is kept with its findings, so shards merge into exactly the figures
one run would give: the figures are always computed again from the runs (metrics.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import ErrorDetails

from reviewer.errors import UsageError
from reviewer.eval.corpus import Defect
from reviewer.model import ModelInfo, Severity, Side, SpecInfo


class Found(BaseModel):
    """One finding of a run, with what matching needs."""

    model_config = ConfigDict(frozen=True)

    path: str
    line: int
    end_line: int | None = None
    side: Side = "new"
    severity: Severity
    rule: str | None = None
    placed: bool = True
    title: str = ""


class CaseRun(BaseModel):
    """One review of one case."""

    model_config = ConfigDict(frozen=True)

    case: str
    repeat: int = Field(0, ge=0)
    findings: tuple[Found, ...] = ()
    error: str | None = None  # the review failed: its defects count as missed
    latency_s: float = 0.0
    tokens: int = 0  # prompt and completion
    requests: int = 0  # model requests, follow-ups included
    follow_ups: int = 0  # repairs of an invalid answer, or asks for a shorter one


class Spread(BaseModel):
    """Sample standard deviation of a set's rates from one repeat to the next (with --repeat 2
    or more): how far a change must go before it is more than the runs' own variance."""

    recall: float | None = None
    precision: float | None = None
    f1: float | None = None


class Figures(BaseModel):
    """Counts and rates of a set of runs (a case, a rule, a severity, all)."""

    runs: int = 0
    defects: int = 0
    matched: int = 0
    findings: int = 0
    false_positives: int = 0  # unmatched, major or worse
    noise: int = 0  # unmatched, minor or info
    recall: float | None = None
    precision: float | None = None
    f1: float | None = None
    rule_accuracy: float | None = None  # of matched findings whose defect names a rule
    placement_rate: float | None = None  # findings on lines of the diff
    valid_json_first_try: float | None = None  # runs answered without a follow-up
    repairs: int = 0
    errors: int = 0
    median_latency_s: float | None = None
    median_tokens: float | None = None
    # Optional with a default so that files written before it existed still load (schema 1).
    spread: Spread | None = None


class CaseResult(BaseModel):
    id: str
    title: str
    language: str
    clean: bool
    tags: tuple[str, ...] = ()
    defects: tuple[Defect, ...] = ()
    figures: Figures
    runs: tuple[CaseRun, ...]


class EvalResult(BaseModel):
    # Only the version this reviewer writes: a newer file may mean other things by the same
    # fields, so it is refused with a word to upgrade rather than read as if it were this one.
    schema_version: Literal[1] = 1
    tool_version: str
    model: ModelInfo
    spec: SpecInfo
    tolerance: int
    repeat: int
    shard: str | None = None  # "I/N" when this file holds one shard
    overall: Figures
    spread: Spread | None = None  # the same as overall.spread; kept for older readers
    by_severity: dict[Severity, Figures]
    by_rule: dict[str, Figures]
    by_language: dict[str, Figures]
    cases: list[CaseResult]


def read(path: Path) -> EvalResult:
    """An eval result file; UsageError naming the file when it is not one."""
    try:
        return EvalResult.model_validate_json(path.read_bytes())
    except OSError as exc:
        raise UsageError(f"{path} cannot be read: {exc.strerror or exc}") from None
    except ValidationError as exc:
        newer = _newer(exc.errors())
        if newer is not None:
            raise UsageError(f"{path} was written by a newer reviewer (schema_version "
                             f"{newer}): upgrade reviewer to read it") from None
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "the file"
        raise UsageError(f"{path} is not an eval result ({where}: {err['msg']}); "
                         "expected the --output of reviewer eval run") from None


def _newer(errors: list[ErrorDetails]) -> int | None:
    """The schema_version of a file written by a newer reviewer, if that is what it is."""
    for err in errors:
        found = err.get("input")
        if err["loc"] == ("schema_version",) and type(found) is int and found > 1:
            return found
    return None


def write(result: EvalResult, path: Path) -> None:
    path.write_text(result.model_dump_json(indent=2) + "\n", encoding="utf-8")
