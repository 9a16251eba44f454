"""Progress of the model requests on stderr: a line per request in a GitLab log section in CI,
a bar on a terminal, nothing with --quiet (warnings still show), through the real CLI."""

from __future__ import annotations

import logging
import os
import pty
import re
import subprocess
import sys
import threading
import time
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from reviewer.model import Usage
from reviewer.progress import SECTION, Bar, Lines, Silent, Step, choose, describe, named
from tests.conftest import API_KEY, ROOT, TOKEN, answer, clean_env
from tests.gitlab_standin import FakeGitLab
from tests.openai_standin import FakeOpenAI, Reply
from tests.test_coverage import spec_with_one_rule

PROMPT, COMPLETION = 1500, 100  # what the stand-in reports for every call
FAILING = "m2.py"  # answers nonsense twice: its request fails
SLOW = "m1.py"  # answers after a while: its line shows the seconds
START = re.compile(r"\x1b\[0Ksection_start:(\d+):([A-Za-z0-9_.-]+)\r\x1b\[0K"
                   r"reviewer: (\d+) model request\(s\)\n")
END = re.compile(r"\x1b\[0Ksection_end:(\d+):([A-Za-z0-9_.-]+)\r\x1b\[0K\n")
LINE = re.compile(r"reviewer: request (\d+)/(\d+) (answered in|not reviewed after) "
                  r"(\d+\.\d) s: (.+?); (\d+) prompt \+ (\d+) completion tokens(?:; (.+))?")


def files(count: int = 4) -> list[dict[str, Any]]:
    """New files too large to share a request at --max-input-tokens 2000 (each may be split
    into pieces, a request each)."""
    body = "".join(f"+value_{i} = compute({i}, 'a longer line of code')\n" for i in range(90))
    return [{"old_path": f"m{n}.py", "new_path": f"m{n}.py", "new_file": True,
             "diff": f"@@ -0,0 +1,90 @@\n{body}"} for n in range(count)]


def reply_per_file(llm: FakeOpenAI, delay: float = 0.0) -> None:
    """A fixed usage for every call; FAILING answers nonsense, SLOW (and with delay, every
    file) answers late."""
    def respond(body: dict[str, Any]) -> Reply:
        text = "".join(str(m["content"]) for m in body["messages"] if m["role"] == "user")
        path = text.split("File: ")[1].split(" (")[0]
        late = max(delay, 0.6 if path == SLOW else 0.0)
        content = "not json at all" if path == FAILING else answer(score=80)
        return Reply(content=content, prompt_tokens=PROMPT, completion_tokens=COMPLETION,
                     delay=late)

    llm.responder = respond


def run(gitlab: FakeGitLab, llm: FakeOpenAI, tmp_path: Path, *flags: str,
        **variables: str) -> tuple[int, str, float, float]:
    """A review of a merge request of four files: exit code, stderr, and the wall-clock
    seconds (time.time()) before and after it."""
    gitlab.add_user("reviewer-bot", TOKEN)
    project = gitlab.add_project("group/app")
    gitlab.add_merge_request(project["id"], iid=7, title="Four", files=files())
    env = clean_env(**{
        "CI_SERVER_URL": gitlab.url, "CI_MERGE_REQUEST_PROJECT_ID": str(project["id"]),
        "CI_MERGE_REQUEST_IID": "7", "REVIEWER_GITLAB_TOKEN": TOKEN,
        "REVIEWER_BASE_URL": llm.url, "REVIEWER_MODEL": "test-model",
        "REVIEWER_API_KEY": API_KEY, "REVIEWER_OUTPUT": str(tmp_path / "r.json")} | variables)
    before = time.time()
    # As bytes: text mode would turn the markers' lone \r into a line break.
    proc = subprocess.run([sys.executable, "-m", "reviewer", "review", "--dry-run", "--spec",
                           str(spec_with_one_rule(tmp_path)), "--max-input-tokens", "2000",
                           *flags], capture_output=True, env=env, timeout=120, check=False)
    return proc.returncode, proc.stderr.decode(), before, time.time()


def request_lines(stderr: str) -> list[re.Match[str]]:
    return [m for line in stderr.splitlines() if (m := LINE.fullmatch(line))]


# --- in CI, through the real CLI ---------------------------------------------------------------

def test_gitlab_ci_shows_one_line_per_request_inside_a_collapsible_section(
        gitlab: FakeGitLab, llm: FakeOpenAI, tmp_path: Path) -> None:
    reply_per_file(llm)

    code, err, before, after = run(gitlab, llm, tmp_path, GITLAB_CI="true", CI="true")

    assert code == 4, err  # FAILING's file is not reviewed
    start, end = START.search(err), END.search(err)
    assert start and end, err
    assert start.group(2) == end.group(2) == SECTION
    assert int(before) <= int(start.group(1)) <= int(end.group(1)) <= after  # real timestamps
    total = int(start.group(3))
    inside = err[start.end():end.start()]
    lines = request_lines(inside)
    assert len(lines) == total == len(inside.splitlines()) >= 4, err  # nothing else inside
    assert sorted(int(m.group(1)) for m in lines) == list(range(1, total + 1))
    assert {m.group(2) for m in lines} == {str(total)}
    assert {m.group(5) for m in lines} == {"m0.py", "m1.py", "m2.py", "m3.py"}
    for line in lines:
        if line.group(5) == FAILING:
            # Its own tokens: the answer and the repair that was asked for.
            assert line.group(3, 6, 7) == ("not reviewed after", str(2 * PROMPT),
                                           str(2 * COMPLETION))
            assert line.group(8).startswith("the model failed: model test-model returned an "
                                            "invalid review twice")
        else:
            assert line.group(3, 6, 7, 8) == ("answered in", str(PROMPT), str(COMPLETION), None)
        if line.group(5) == SLOW:
            assert float(line.group(4)) >= 0.6  # this request's own seconds
    # The warning comes after the section, where nothing hides it.
    assert "a model request failed" in err[end.end():]


def test_other_ci_shows_the_lines_without_gitlabs_markers(
        gitlab: FakeGitLab, llm: FakeOpenAI, tmp_path: Path) -> None:
    reply_per_file(llm)

    code, err, _, _ = run(gitlab, llm, tmp_path, CI="true")

    assert code == 4, err
    assert "section_" not in err and "\x1b" not in err
    header = re.search(r"^reviewer: (\d+) model request\(s\)$", err, re.MULTILINE)
    assert header and len(request_lines(err)) == int(header.group(1)) >= 4, err


def test_requests_the_deadline_stopped_have_their_lines(
        gitlab: FakeGitLab, llm: FakeOpenAI, tmp_path: Path) -> None:
    reply_per_file(llm, delay=1.5)

    code, err, _, _ = run(gitlab, llm, tmp_path, "--concurrency", "1", "--deadline", "4",
                          GITLAB_CI="true", CI="true")

    assert code == 4, err
    start, lines = START.search(err), request_lines(err)
    assert start and len(lines) == int(start.group(3)), err  # every request, answered or not
    late = [m for m in lines if m.group(8) == "not answered before --deadline"]
    assert late and len(late) < len(lines), err
    assert END.search(err)  # the section is closed all the same


@pytest.mark.parametrize(("flags", "variables"), [
    (("--quiet",), {}), (("-q",), {}), ((), {"REVIEWER_QUIET": "true"})])
def test_quiet_shows_no_progress_but_the_warnings(
        gitlab: FakeGitLab, llm: FakeOpenAI, tmp_path: Path, flags: tuple[str, ...],
        variables: dict[str, str]) -> None:
    reply_per_file(llm)

    code, err, _, _ = run(gitlab, llm, tmp_path, *flags, GITLAB_CI="true", CI="true",
                          **variables)

    assert code == 4
    assert "section_" not in err and "model request(s)" not in err and not request_lines(err)
    assert "a model request failed" in err  # warnings are not progress
    assert "reviewer: review incomplete" in err  # nor are errors


def test_a_piped_run_outside_ci_shows_no_progress(
        gitlab: FakeGitLab, llm: FakeOpenAI, tmp_path: Path) -> None:
    reply_per_file(llm)

    code, err, _, _ = run(gitlab, llm, tmp_path)

    # A script or a hook reads stderr: the warning and the one error line, as before.
    assert code == 4
    assert "model request(s)" not in err and not request_lines(err)
    assert "a model request failed" in err


def test_a_terminal_gets_the_bar_on_stderr_and_stdout_keeps_the_review(
        gitlab: FakeGitLab, llm: FakeOpenAI, tmp_path: Path) -> None:
    reply_per_file(llm, delay=0.4)
    gitlab.add_user("reviewer-bot", TOKEN)
    project = gitlab.add_project("group/app")
    gitlab.add_merge_request(project["id"], iid=7, title="Four", files=files())
    env = clean_env(CI_SERVER_URL=gitlab.url, CI_MERGE_REQUEST_PROJECT_ID=str(project["id"]),
                    CI_MERGE_REQUEST_IID="7", REVIEWER_GITLAB_TOKEN=TOKEN,
                    REVIEWER_BASE_URL=llm.url, REVIEWER_MODEL="test-model",
                    REVIEWER_API_KEY=API_KEY, REVIEWER_OUTPUT=str(tmp_path / "r.json"),
                    TERM="xterm")

    code, stdout, terminal = on_a_terminal(
        [sys.executable, "-m", "reviewer", "review", "--dry-run", "--spec",
         str(spec_with_one_rule(tmp_path)), "--max-input-tokens", "2000"], env)

    assert code == 4  # a request failed: the review is incomplete

    assert "reviewing" in terminal and "tokens" in terminal, terminal
    assert re.search(r"(\d+)/\1", terminal)  # all requests done, as the bar last showed
    assert "a model request failed" in terminal  # after the bar, which has gone
    assert "section_" not in terminal and not request_lines(terminal)
    assert "reviewing" not in stdout and "Score" in stdout  # the result alone, on stdout


def on_a_terminal(argv: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    """Run argv with stderr on a pseudo-terminal: (exit code, stdout, what the terminal
    received)."""
    leader, follower = pty.openpty()
    received: list[bytes] = []

    def drain() -> None:  # the terminal must be read, or the bar blocks the run
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:
                return
            if not chunk:
                return
            received.append(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=follower, env=env,
                              cwd=ROOT, timeout=120, check=False)
    finally:
        os.close(follower)
    reader.join(10)
    os.close(leader)
    return proc.returncode, proc.stdout.decode(), b"".join(received).decode(errors="replace")


# --- the implementations, driven directly ------------------------------------------------------

def step(number: int, failure: str | None = None, files: tuple[str, ...] = ("a.py",),
         prompt: int = 1000, completion: int = 50) -> Step:
    return Step(number, files, 1.25, Usage(prompt_tokens=prompt, completion_tokens=completion,
                                           requests=1), failure)


def test_a_line_names_the_first_files_and_counts_the_rest() -> None:
    assert named(["a.py"]) == "a.py"
    assert named(["a.py", "b.py", "c.py"]) == "a.py, b.py, c.py"
    assert named(["a.py", "b.py", "c.py", "d.py", "e.py"]) == "a.py, b.py, c.py and 2 more"
    assert describe(step(3, files=("a.py", "b.py", "c.py", "d.py")), 8) == (
        "request 3/8 answered in 1.2 s: a.py, b.py, c.py and 1 more; 1000 prompt + 50 "
        "completion tokens")
    assert describe(step(4, "not answered before --deadline"), 8).endswith(
        "; not answered before --deadline")


def test_lines_from_many_threads_stay_whole_and_the_section_closes_once() -> None:
    out = StringIO()
    lines = Lines(out, section=True, clock=lambda: 1_700_000_000)
    lines.start(400)
    workers = [threading.Thread(target=lambda k=k: [lines.advance(step(k * 50 + i + 1))
                                                    for i in range(50)]) for k in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    lines.close()
    lines.close()

    text = out.getvalue()
    assert text.startswith(f"\x1b[0Ksection_start:1700000000:{SECTION}\r\x1b[0Kreviewer: 400 "
                           "model request(s)\n")
    assert text.endswith(f"\x1b[0Ksection_end:1700000000:{SECTION}\r\x1b[0K\n")
    assert text.count("section_end") == 1
    assert len(request_lines(text)) == 400


def test_no_requests_show_no_section() -> None:
    out = StringIO()
    lines = Lines(out, section=True)
    lines.start(0)
    lines.close()
    assert out.getvalue() == ""


def test_the_bar_shows_done_of_all_tokens_failures_and_elapsed_time() -> None:
    out = StringIO()
    bar = Bar(Console(file=out, force_terminal=True, width=120))
    bar.start(3)
    workers = [threading.Thread(target=bar.advance, args=(s,)) for s in
               (step(1), step(2, completion=150), step(3, "the model failed: boom"))]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    bar.close()

    text = out.getvalue()
    assert "reviewing" in text and "3/3" in text
    assert "3250 tokens, 1 not reviewed" in text  # 3 x 1000 prompt + 50 + 150 + 50
    assert re.search(r"\d:\d\d:\d\d", text)  # time elapsed


def test_a_log_line_while_the_bar_shows_goes_above_it_and_back_after() -> None:
    out = StringIO()
    handler = logging.StreamHandler(sys.stderr)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        bar = Bar(Console(file=out, force_terminal=True, width=120))
        bar.start(2)
        logging.getLogger("reviewer.test").warning("a warning while the bar shows")
        bar.advance(step(1))
        bar.close()
        assert handler.stream is sys.stderr  # restored
    finally:
        root.removeHandler(handler)

    assert "a warning while the bar shows" in out.getvalue()  # through rich, above the bar


def test_choose_follows_quiet_ci_and_the_terminal() -> None:
    terminal = Console(file=StringIO(), force_terminal=True)
    piped = Console(file=StringIO(), force_terminal=False)
    assert isinstance(choose(quiet=True, in_ci=True, gitlab_ci=True, console=terminal), Silent)
    assert isinstance(choose(quiet=False, in_ci=True, gitlab_ci=True, console=terminal), Lines)
    assert isinstance(choose(quiet=False, in_ci=False, gitlab_ci=False, console=terminal), Bar)
    assert isinstance(choose(quiet=False, in_ci=False, gitlab_ci=False, console=piped), Silent)
