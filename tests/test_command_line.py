"""The command line's own errors and streams: click's usage errors as one line like every
other error, and a reader of stdout that goes away (`reviewer ... | head`)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import clean_env, run_cli


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


def test_a_reader_that_goes_away_is_no_error() -> None:
    """`reviewer schema | head -c 0`: the write fails with EPIPE; nothing on stderr, exit 1."""
    proc = subprocess.Popen([sys.executable, "-m", "reviewer", "schema"], env=clean_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert (proc.wait(timeout=60), err) == (1, "")
