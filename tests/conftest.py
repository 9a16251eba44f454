"""Shared fixtures: the stand-ins on 127.0.0.1 and the real CLI entry point."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from reviewer.model import ModelInfo, PlacedFinding, Review, SpecInfo, Usage
from tests.gitlab_standin import FakeGitLab
from tests.openai_standin import FakeOpenAI

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "glpat-TopSecretToken123"
API_KEY = "sk-SecretModelKey456"


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str


def clean_env(**extra: str) -> dict[str, str]:
    """The process environment without anything that would configure a run by accident."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CI_", "REVIEWER_", "OPENAI_", "GITLAB_", "GIT_"))
           and k not in ("CI", "GITLAB_CI")}
    env["COLUMNS"] = "200"
    env.update(extra)
    return env


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
            timeout: float = 120) -> Result:
    """Run the real console entry point in a subprocess, as a user or a CI job would."""
    proc = subprocess.run([sys.executable, "-m", "reviewer", *args], capture_output=True,
                          text=True, env=env if env is not None else clean_env(),
                          cwd=cwd, timeout=timeout, check=False)
    return Result(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def gitlab() -> Iterator[FakeGitLab]:
    fake = FakeGitLab().start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def llm() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI(models=()).start()
    try:
        yield fake
    finally:
        fake.stop()


def lines(*rows: str) -> str:
    """Diff text from explicit rows (a context line of an empty line is one space)."""
    return "\n".join(rows) + "\n"


def review_of(findings: list[PlacedFinding], **fields: Any) -> Review:
    """A small review artifact holding findings."""
    data: dict[str, Any] = {
        "generated_at": datetime(2024, 5, 1, 12, 0, tzinfo=UTC), "tool_version": "0.1.0",
        "model": ModelInfo(name="m", host="models.example"),
        "spec": SpecInfo(source="bundled", ref=None, commit=None, rules=["COR-001"]),
        "score": 70, "verdict": "comment", "summary": "A change.", "findings": findings,
        "files_reviewed": ["app.py"], "skipped_files": [], "usage": Usage(), "timings": {}}
    return Review(**(data | fields))


def note_json(body: str) -> Review:
    """The review JSON in the collapsed block at the end of a posted note."""
    tail = body.split("<details><summary>Review JSON</summary>")[-1]
    block = re.search(r"^(`{3,})json\n(.*?)\n\1$", tail, re.DOTALL | re.MULTILINE)
    assert block, "the note has no JSON block"
    return Review.model_validate_json(block.group(2))


def answer(score: int = 80, verdict: str = "comment", summary: str = "Looks reasonable.",
           findings: list[dict[str, Any]] | None = None) -> str:
    """A model answer as JSON text."""
    return json.dumps({"score": score, "verdict": verdict, "summary": summary,
                       "findings": findings or []})


def finding(path: str, line: int, severity: str = "major", side: str = "new",
            rule: str | None = "COR-001", title: str = "Problem", message: str = "Fix it.",
            **extra: Any) -> dict[str, Any]:
    return {"path": path, "line": line, "side": side, "severity": severity, "rule": rule,
            "title": title, "message": message, **extra}
