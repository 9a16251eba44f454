"""Incremental reviews over a merge request's life, through the real CLI on the GitLab stand-in
backed by a real git repository (issue 10, items 2-5): which files each push sends to the
model, the threads after each push, the summary's "reviewed / carried over" lines, the full
review after a force-push and after a rebase, and the gate over the whole merge request."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import gitlab as python_gitlab
import pytest

from reviewer.state import read as read_state
from tests.conftest import TOKEN, Result, answer, finding, run_cli
from tests.gitlab_standin import FakeGitLab, files_from_git, git_commit
from tests.openai_standin import FakeOpenAI
from tests.test_inline_gitlab import env, summary, threads

FILE = re.compile(r"File: (\S+) \(")
A1 = b"import os\n\n\ndef run(cmd):\n    os.system(cmd)\n    return 0\n"
A2 = b"import subprocess\n\n\ndef run(cmd):\n    subprocess.run([cmd], check=True)\n    return 0\n"
B1 = b"def total(xs):\n    t = 0\n    for x in xs: t += x\n    return t\n"
B3 = B1 + b"# totals\n"
C1 = b"def load(path):\n    f = open(path)\n    return f.read()\n"
SHELL = finding("a.py", 5, "critical", rule="SEC-001", title="Shell injection")
STYLE = finding("b.py", 3, "minor", rule="COR-001", title="Loop on one line")
LEAK = finding("c.py", 2, "major", rule="COR-001", title="File never closed")


class History:
    """A merge request whose pushes are real commits: the MR's diff versions and GitLab's
    compare and merge_base all come from the same repository."""

    def __init__(self, gitlab: FakeGitLab, llm: FakeOpenAI, tmp_path: Path) -> None:
        self.gitlab, self.llm, self.tmp = gitlab, llm, tmp_path
        self.repo = tmp_path / "repo"
        self.target = git_commit(self.repo, None, {"README.md": b"# app\n"})
        gitlab.add_user("reviewer-bot", TOKEN)
        gitlab.add_user("alice", "glpat-alice-token")
        project = gitlab.add_project("group/app")
        gitlab.add_repository(project["id"], self.repo)
        self.head = git_commit(self.repo, self.target, {"a.py": A1, "b.py": B1, "c.py": C1})
        files, _ = files_from_git(self.repo, self.target, self.head)
        self.mr = gitlab.add_merge_request(project["id"], iid=4, title="App", files=files,
                                           base_sha=self.target, start_sha=self.target,
                                           head_sha=self.head)
        self.said: dict[str, list[dict[str, Any]]] = {}  # what the model reports, by file
        self.asked: list[list[str]] = []  # the files of each model request
        self.requests = 0  # model requests of the last run
        llm.responder = self._answer

    def _answer(self, body: dict[str, Any]) -> str:
        text = "\n".join(str(m.get("content")) for m in body["messages"])
        paths = FILE.findall(text)
        self.asked.append(paths)
        return answer(findings=[f for p in paths for f in self.said.get(p, [])])

    def push(self, files: dict[str, Any], parent: str | None = None,
             target: str | None = None) -> str:
        """A push on top of the head (or of parent: a force-push), onto target if it moved."""
        self.target = target or self.target
        self.head = git_commit(self.repo, parent or self.head, files)
        diffs, _ = files_from_git(self.repo, self.target, self.head)
        self.gitlab.push(self.mr["project_id"], 4, files=diffs, head_sha=self.head,
                         base_sha=self.target, start_sha=self.target)
        return self.head

    def review(self, *args: str) -> tuple[Result, set[str]]:
        """A run with --incremental; the files the model was asked about."""
        before = len(self.asked)
        result = run_cli("review", "--incremental", *args,
                         env=env(self.gitlab, self.llm, self.mr, self.tmp))
        assert result.code in (0, 3), result.stderr
        self.requests = len(self.asked) - before
        return result, {p for paths in self.asked[before:] for p in paths}

    def threads(self) -> dict[str, tuple[bool, list[str]]]:
        """Each of our threads by its title: resolved, and the replies."""
        out: dict[str, tuple[bool, list[str]]] = {}
        for d in threads(self.gitlab, self.mr):
            title = re.search(r"· \*\*(.+?)\*\*", d["notes"][0]["body"])
            assert title and title.group(1) not in out, "a duplicated thread"
            out[title.group(1)] = (d["notes"][0]["resolved"], [n["body"] for n in d["notes"][1:]])
        return out

    def summary(self) -> str:
        return summary(self.gitlab, self.mr)


@pytest.fixture
def history(gitlab: FakeGitLab, llm: FakeOpenAI, tmp_path: Path) -> History:
    return History(gitlab, llm, tmp_path)


def test_five_pushes_ask_only_what_changed_close_fixed_threads_and_never_duplicate(
        history: History) -> None:
    h = history
    h.said = {"a.py": [SHELL], "b.py": [STYLE], "c.py": [LEAK]}
    _, asked = h.review()
    assert asked == {"a.py", "b.py", "c.py"}
    assert h.threads() == {"Shell injection": (False, []), "Loop on one line": (False, []),
                           "File never closed": (False, [])}

    # Push 2 fixes the shell call: only a.py is asked about; its thread closes as fixed.
    h.said = {"c.py": [LEAK]}
    second = h.push({"a.py": A2})
    result, asked = h.review("--fail-on", "major")
    assert asked == {"a.py"} and h.requests == 1
    assert h.threads()["Shell injection"] == (True, [f"Fixed in {second[:12]}."])
    assert h.threads()["Loop on one line"] == (False, [])
    body = h.summary()
    assert "**Reviewed in this run since" in body and "(1 file(s)):** `a.py`" in body
    assert "(2 file(s), 2 finding(s)):** `b.py`, `c.py`" in body
    # The gate counts the carried-over major finding of c.py, which no model saw this run.
    assert result.code == 3 and "--fail-on major" in result.stderr

    # Push 3 touches b.py away from its finding, which the model no longer reports.
    third = h.push({"b.py": B3})
    _, asked = h.review()
    assert asked == {"b.py"} and h.requests == 1
    assert h.threads()["Loop on one line"] == (True, [f"No longer reported at {third[:12]}."])
    assert h.threads()["File never closed"] == (False, [])
    state = read_state(h.summary())
    assert state is not None and state.head_sha == third

    # A person resolves the leak's thread: later runs leave it resolved and post no other.
    leak_thread = next(d for d in threads(h.gitlab, h.mr) if "File never closed" in
                       d["notes"][0]["body"])
    human = python_gitlab.Gitlab(h.gitlab.url, private_token="glpat-alice-token")
    human.projects.get(h.mr["project_id"], lazy=True).mergerequests.get(4, lazy=True) \
        .discussions.update(leak_thread["id"], {"resolved": True})

    # Push 4 is a force-push from the target: everything is asked again, nothing duplicated.
    h.push({"a.py": A2, "b.py": B3, "c.py": C1 + b"# v4\n"}, parent=h.target)
    _, asked = h.review()
    assert asked == {"a.py", "b.py", "c.py"}
    assert "no longer in this merge request's history (a force-push)" in h.summary()
    assert h.threads()["File never closed"] == (True, [])

    # Push 5: the target branch moved and the branch was rebased onto it.
    moved = git_commit(h.repo, h.target, {"README.md": b"# app, moved\n"})
    h.push({"a.py": A2, "b.py": B3, "c.py": C1 + b"# v4\n"}, parent=moved, target=moved)
    _, asked = h.review()
    assert asked == {"a.py", "b.py", "c.py"}
    assert "(a rebase onto the moved target branch)" in h.summary()
    assert len(h.threads()) == 3

    # Push 6 changes nothing the review reads again (the same head): no model request.
    _, asked = h.review()
    assert asked == set() and h.requests == 0
    assert "no file changed that needs review" in h.summary()
    assert "(3 file(s), 1 finding(s)):** `a.py`, `b.py`, `c.py`" in h.summary()
    assert len(h.threads()) == 3


def test_full_reviews_everything_and_says_nothing_of_earlier_runs(history: History) -> None:
    h = history
    h.said = {"a.py": [SHELL]}
    h.review()
    h.push({"b.py": B3})

    result, asked = h.review("--full")

    assert asked == {"a.py", "b.py", "c.py"}
    assert "Carried over" not in h.summary()
    assert result.code == 0


def test_an_unreadable_earlier_review_means_a_full_review_that_says_why(
        history: History) -> None:
    h = history
    h.said = {"a.py": [SHELL]}
    h.review()
    note = next(n for n in h.gitlab.notes(h.mr["project_id"], 4)
                if "reviewer:state v1 " in n["body"])
    damaged = re.sub(r"reviewer:state v1 \S+", "reviewer:state v1 AAAA", note["body"])
    bot = python_gitlab.Gitlab(h.gitlab.url, private_token=TOKEN)
    bot.projects.get(h.mr["project_id"], lazy=True).mergerequests.get(4, lazy=True) \
        .notes.update(note["id"], {"body": damaged})
    h.push({"b.py": B3})

    result, asked = h.review()

    assert asked == {"a.py", "b.py", "c.py"}
    assert "full review: the earlier review cannot be read (its state is damaged)" in \
        h.summary()
    assert "cannot be read" in result.stderr
    assert h.threads() == {"Shell injection": (False, [])}


def test_another_model_reviews_in_full_and_says_why(history: History) -> None:
    h = history
    h.said = {"a.py": [SHELL]}
    h.review()
    h.push({"b.py": B3})

    _, asked = h.review("--model", "other")

    assert asked == {"a.py", "b.py", "c.py"}
    assert "full review: the model changed since the last review" in h.summary()
    assert h.threads() == {"Shell injection": (False, [])}
