"""The command line's own errors and streams: click's usage errors as one line like every
other error, and a reader of stdout that goes away (`reviewer ... | head`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from reviewer.model import Review
from tests.conftest import answer, clean_env, finding, run_cli
from tests.openai_standin import FakeOpenAI
from tests.test_diff_file import saved_diff


@pytest.mark.parametrize(("args", "line"), [
    (["review", "--no-such-flag"],
     "No such option: --no-such-flag (see reviewer review --help)"),
    (["eval", "run"], "Missing argument 'corpus'. (see reviewer eval run --help)"),
    (["eval", "run", "eval", "--repeat", "0"],
     "Invalid value for '--repeat' (env var: 'REVIEWER_EVAL_REPEAT'): Input should be greater "
     "than or equal to 1 (see reviewer eval run --help)"),
    (["spec", "show"], "No such command 'show'. (see reviewer spec --help)"),
    (["review", "--diff"], "Option '--diff' requires an argument."),
])
def test_a_usage_error_of_the_parser_is_one_line_and_exit_2(args: list[str], line: str) -> None:
    result = run_cli(*args)
    assert (result.code, result.stderr, result.stdout) == (2, f"reviewer: error: {line}\n", "")


def test_no_command_prints_the_help_and_exits_2() -> None:
    result = run_cli()
    assert result.code == 2 and "review" in result.stdout and result.stderr == ""


def closed_stdout(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    """Run the CLI with a stdout whose reader has gone before it writes a byte (as `| head -c
    0`): (exit code, stderr)."""
    proc = subprocess.Popen([sys.executable, "-m", "reviewer", *args], env=env or clean_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    err = proc.stderr.read().decode()
    return proc.wait(timeout=120), err


def test_a_reader_that_goes_away_is_no_error() -> None:
    assert closed_stdout("schema") == (0, "")


def test_a_reader_that_goes_away_does_not_decide_the_exit_code(tmp_path: Path,
                                                               llm: FakeOpenAI) -> None:
    """`reviewer review ... | head`: the review is still written and gated; the gate's exit
    code (3) is the run's, not a broken pipe's."""
    patch = saved_diff(tmp_path)
    llm.queue(answer(score=60, findings=[finding("app.py", 2, "major", title="Subtracts")]))
    out = tmp_path / "out.json"
    code, err = closed_stdout("review", "--diff", str(patch), "--base-url", llm.url,
                              "--model", "m", "--fail-on", "major", "-o", str(out))
    assert (code, err) == (3, "reviewer: quality gate failed: 1 finding(s) at or above "
                              "--fail-on major\n")
    assert Review.model_validate_json(out.read_text()).findings[0].title == "Subtracts"
