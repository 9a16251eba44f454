"""The contracts: the model's answer (untrusted input) and the review artifact (our output)."""

from __future__ import annotations

import copy
import functools
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Severity = Literal["info", "minor", "major", "critical", "blocker"]
Verdict = Literal["approve", "comment", "request_changes"]
Side = Literal["new", "old"]

MAX_FINDINGS_PER_ANSWER = 12
SEVERITIES: tuple[Severity, ...] = ("info", "minor", "major", "critical", "blocker")


def severity_rank(severity: Severity) -> int:
    """Position of a severity from info (0) to blocker (4)."""
    return SEVERITIES.index(severity)


def _words(value: Any) -> Any:
    # Small models write "Major", "request changes" or "Request-Changes"; accept the meaning.
    if isinstance(value, str):
        return value.strip().lower().replace(" ", "_").replace("-", "_")
    return value


class Finding(BaseModel):
    """One problem the model reports, as it reports it."""

    model_config = ConfigDict(extra="ignore")

    path: str = Field(description="File path as shown in the diff header (new path).")
    line: int = Field(description="Line number from the diff: the new-file number, or the "
                      "old-file number when side is 'old'.")
    side: Side = Field(default="new", description="'new' for added or unchanged lines, "
                       "'old' for removed lines.")
    end_line: int | None = Field(default=None, description="Last line of a multi-line finding.")
    severity: Severity
    rule: str | None = Field(default=None, description="Id of the rule this finding applies.")
    title: str = Field(description="One short line.")
    message: str = Field(description="What is wrong and how to fix it.")
    suggestion: str | None = Field(default=None, description="Replacement code for the lines, "
                                   "or null.")

    @field_validator("severity", "side", mode="before")
    @classmethod
    def _normalise(cls, value: Any) -> Any:
        return _words(value)

    @field_validator("path", mode="before")
    @classmethod
    def _strip(cls, value: Any) -> Any:
        return value.strip() if isinstance(value, str) else value


class ModelAnswer(BaseModel):
    """The answer to one review request (DESIGN.md section 2)."""

    model_config = ConfigDict(extra="ignore")

    score: int = Field(description="Overall quality of the change, 0 (unacceptable) to 100.")
    verdict: Verdict
    summary: str = Field(description="Two to five sentences on the change as a whole.")
    findings: list[Finding] = Field(default_factory=list)

    @field_validator("verdict", mode="before")
    @classmethod
    def _normalise(cls, value: Any) -> Any:
        return _words(value)

    @field_validator("score", mode="before")
    @classmethod
    def _round(cls, value: Any) -> Any:
        if isinstance(value, float):
            return round(value)
        return value


def answer_schema(max_findings: int = MAX_FINDINGS_PER_ANSWER) -> dict[str, Any]:
    """JSON schema of the model's answer, for structured output: a copy of one built once per
    bound (pydantic takes milliseconds to build it, and every request sends it)."""
    return copy.deepcopy(_answer_schema(max_findings))


def bare_answer_schema() -> dict[str, Any]:
    """The answer's schema without bounds, for a grammar engine that refuses them (vLLM with
    a forced xgrammar backend: "The provided JSON schema contains features not supported by
    xgrammar", vllm/v1/structured_output/backend_xgrammar.py)."""
    return copy.deepcopy(_bare_schema())


@functools.cache
def _bare_schema() -> dict[str, Any]:
    return ModelAnswer.model_json_schema()


@functools.cache
def _answer_schema(max_findings: int) -> dict[str, Any]:
    schema = ModelAnswer.model_json_schema()
    # Bounds guide constrained decoding (small models otherwise loop, adding findings, or one
    # string, until the token limit); validation stays lenient, so a longer answer is never lost.
    schema["properties"]["score"].update(minimum=0, maximum=100)
    schema["properties"]["summary"]["maxLength"] = 500
    schema["properties"]["findings"]["maxItems"] = max_findings
    finding = schema["$defs"]["Finding"]["properties"]
    finding["line"]["minimum"] = 1
    for name, most in (("path", 200), ("title", 100), ("message", 300)):
        finding[name]["maxLength"] = most
    finding["rule"]["anyOf"][0]["maxLength"] = 40  # the string branch of "string or null"
    finding["suggestion"]["anyOf"][0]["maxLength"] = 400
    return schema


class PlacedFinding(Finding):
    """A finding after it was checked against the diff."""

    placed: bool = Field(description="True when path and line are a line of the reviewed diff.")
    fingerprint: str = Field(description="Stable id: rule, path, the text of the line and "
                             "which occurrence of that text in the file's diff it is; without "
                             "a rule, the title and message as well.")
    in_change: bool = Field(default=True, description="False when the path is no file of the "
                            "change at all (small models invent them): such a finding is shown "
                            "apart and neither caps the score nor drives the verdict or gate.")


class SkippedFile(BaseModel):
    path: str
    reason: str


class NotReviewed(BaseModel):
    """A file that needed review but was not reviewed, and the limit that stopped it."""

    path: str
    reason: str


class Coverage(BaseModel):
    """How much of the change the review read.

    Files count every file of the change; lines count the changed (added and removed) lines of
    the files that needed review, as far as the diff shows them (a file GitLab cut for size
    counts no lines). Files skipped by policy (binary, lock, generated, vendored, --exclude,
    nothing textual) are ``files_skipped``; files that needed review but hit a limit (size,
    budget, a model failure) are ``files_not_reviewed`` and listed in ``not_reviewed``.
    """

    files_total: int = 0
    files_reviewed: int = 0
    files_skipped: int = 0
    files_not_reviewed: int = 0
    lines_total: int = 0
    lines_reviewed: int = 0
    lines_not_reviewed: int = 0
    not_reviewed: list[NotReviewed] = Field(default_factory=list)

    @property
    def complete(self) -> bool:
        """True when every file that needed review was reviewed."""
        return self.files_not_reviewed == 0

    @property
    def needed_review(self) -> int:
        """Files that needed review: reviewed or not."""
        return self.files_reviewed + self.files_not_reviewed


class MergeRequestInfo(BaseModel):
    project: str
    iid: int
    web_url: str
    title: str
    source_branch: str
    target_branch: str
    base_sha: str
    start_sha: str
    head_sha: str


class LocalInfo(BaseModel):
    repository: str
    base: str
    head: str
    base_sha: str
    head_sha: str | None = Field(description="Null when the working tree was reviewed.")


class DiffFileInfo(BaseModel):
    """The diff file `review --diff` read: what to find it by and what it held."""

    path: str = Field(description="The file as given; \"-\" for stdin.")
    sha256: str = Field(description="SHA-256 of its bytes, hex.")
    size: int = Field(ge=0, description="Its size in bytes.")


class ModelInfo(BaseModel):
    name: str
    host: str
    structured_output: str | None = None


class SpecInfo(BaseModel):
    source: str
    ref: str | None
    commit: str | None
    rules: list[str]


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    requests: int = 0


class Rerun(BaseModel):
    """How this run builds on the earlier review of the merge request (incremental reviews)."""

    mode: Literal["full", "incremental"]
    since_sha: str | None = Field(default=None, description="The head commit the earlier "
                                  "review read; the model was asked only about files changed "
                                  "since.")
    reason: str | None = Field(default=None, description="Why this run reviewed in full.")
    files_carried_over: list[str] = Field(default_factory=list, description="Files unchanged "
                                          "since the earlier review: their findings were "
                                          "carried over without a model request.")
    findings_carried_over: int = 0


class Review(BaseModel):
    """The review artifact, review.json (schema_version 1)."""

    schema_version: Literal[1] = 1
    generated_at: datetime
    tool_version: str
    merge_request: MergeRequestInfo | None = None
    local: LocalInfo | None = None
    diff_file: DiffFileInfo | None = None
    model: ModelInfo
    spec: SpecInfo
    score: int | None = Field(ge=0, le=100, description="Null when nothing was reviewed.")
    verdict: Verdict
    summary: str
    findings: list[PlacedFinding]
    files_reviewed: list[str]
    skipped_files: list[SkippedFile] = Field(description="Files skipped by policy, with reasons.")
    coverage: Coverage = Field(default_factory=Coverage)
    usage: Usage
    timings: dict[str, float]
    rerun: Rerun | None = Field(default=None, description="Null for a local review or "
                                "without --incremental.")
