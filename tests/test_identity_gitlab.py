"""Thread identity over runs of the real CLI against the GitLab stand-in (issue 10, item 1):
lines that read alike, two problems on one line, rewordings, moved lines, threads posted by
the version before markers were versioned, and threads a person resolved."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import gitlab as python_gitlab
import pytest

from reviewer.identity import legacy_fingerprint
from tests.conftest import TOKEN, answer, finding, run_cli
from tests.gitlab_standin import FakeGitLab
from tests.openai_standin import FakeOpenAI, Reply
from tests.test_identity import STYLE, WORDINGS  # one finding told three ways; another problem
from tests.test_inline_gitlab import env, review, summary, threads

# A new file whose lines 6 and 13 read alike (the example).
DB = ["import db", "", "", "def load(user_id):", "    log('load')",
      "    conn = get_connection()", "    return conn.query(", "        'SELECT * FROM users"
      " WHERE id = ' + user_id)", "", "", "def save(row):", "    log('save')",
      "    conn = get_connection()", "    conn.insert(row)", ""]
QUERY = 8  # the line that builds the query


def new_file(content: list[str]) -> list[dict[str, Any]]:
    body = "".join(f"+{line}\n" for line in content)
    return [{"old_path": "db.py", "new_path": "db.py", "new_file": True,
             "diff": f"@@ -0,0 +1,{len(content)} @@\n{body}"}]


@pytest.fixture
def mr(gitlab: FakeGitLab) -> dict[str, Any]:
    gitlab.add_user("reviewer-bot", TOKEN)
    gitlab.add_user("alice", "glpat-alice-token")
    project = gitlab.add_project("group/db")
    return gitlab.add_merge_request(project["id"], iid=4, title="Database", files=new_file(DB))


def push(gitlab: FakeGitLab, mr: dict[str, Any], sha: str, content: list[str]) -> None:
    gitlab.push(mr["project_id"], mr["iid"], files=new_file(content), head_sha=sha * 40)


def said(words: tuple[str, str], line: int = QUERY, severity: str = "critical",
         **extra: Any) -> dict[str, Any]:
    """A finding without a rule, in words a model chose."""
    return finding("db.py", line, severity, rule=None, title=words[0], message=words[1],
                   **extra)


def state(gitlab: FakeGitLab, mr: dict[str, Any]) -> list[tuple[int, str, bool, list[str]]]:
    """Each of our threads: its line, the title it shows, resolved, the replies."""
    out = []
    for d in threads(gitlab, mr):
        first = d["notes"][0]
        title = re.search(r"· \*\*(.+?)\*\*$", first["body"].split("\n")[1])
        assert title, first["body"]
        out.append((first["position"]["new_line"], title.group(1), first["resolved"],
                    [n["body"] for n in d["notes"][1:]]))
    return out


def test_two_lines_that_read_alike_get_a_thread_each_and_the_summary_says_so(
        gitlab: FakeGitLab, llm: FakeOpenAI, mr: dict[str, Any], tmp_path: Path) -> None:
    leak = {"rule": "COR-001", "title": "Connection never closed",
            "message": "get_connection() is never closed."}
    review(gitlab, llm, mr, tmp_path, [finding("db.py", 6, **leak),
                                       finding("db.py", 13, **leak)])

    assert state(gitlab, mr) == [(6, "Connection never closed", False, []),
                                 (13, "Connection never closed", False, [])]
    assert "2 finding(s) inline (💬), 0 in this summary" in summary(gitlab, mr)
    # Again, unchanged: nothing new, nothing resolved.
    push(gitlab, mr, "d", DB)
    review(gitlab, llm, mr, tmp_path, [finding("db.py", 6, **leak),
                                       finding("db.py", 13, **leak)])
    assert len(threads(gitlab, mr)) == 2
    assert "since the last run: 0 new, 0 resolved" in summary(gitlab, mr)


def test_two_rules_on_one_line_get_two_threads(
        gitlab: FakeGitLab, llm: FakeOpenAI, mr: dict[str, Any], tmp_path: Path) -> None:
    review(gitlab, llm, mr, tmp_path, [
        finding("db.py", QUERY, "critical", rule="SEC-001", title="Injection"),
        finding("db.py", QUERY, "minor", rule="COR-001", title="Injection")])

    assert [(line, resolved) for line, _, resolved, _ in state(gitlab, mr)] == [
        (QUERY, False), (QUERY, False)]
    assert "2 finding(s) inline (💬), 0 in this summary" in summary(gitlab, mr)


def test_two_problems_on_one_line_without_rules_get_two_threads_and_close_apart(
        gitlab: FakeGitLab, llm: FakeOpenAI, mr: dict[str, Any], tmp_path: Path) -> None:
    fix = "        'SELECT * FROM users WHERE id = %s', (user_id,))"
    review(gitlab, llm, mr, tmp_path, [said(WORDINGS[0]),
                                       said(STYLE, severity="minor", suggestion=fix)])

    assert [title for _, title, _, _ in state(gitlab, mr)] == [WORDINGS[0][0], STYLE[0]]
    style_note = threads(gitlab, mr)[1]["notes"][0]["body"]
    assert "```suggestion:-0+0\n" + fix + "\n```" in style_note  # the minor one's fix offered

    # The injection is fixed; the style point is reported again, in other words.
    push(gitlab, mr, "d", DB)
    review(gitlab, llm, mr, tmp_path, [said(("Line is too long", "Longer than 100 characters."),
                                            severity="minor")])

    assert state(gitlab, mr) == [
        (QUERY, WORDINGS[0][0], True, [f"No longer reported at {'d' * 12}."]),
        (QUERY, STYLE[0], False, [])]


def test_one_finding_reworded_over_three_runs_keeps_one_thread_never_resolved(
        gitlab: FakeGitLab, llm: FakeOpenAI, mr: dict[str, Any], tmp_path: Path) -> None:
    for sha, words in zip("cde", WORDINGS, strict=True):
        if sha != "c":
            push(gitlab, mr, sha, DB)
        review(gitlab, llm, mr, tmp_path, [said(words)])
        assert state(gitlab, mr) == [(QUERY, WORDINGS[0][0], False, [])]
        assert "1 finding(s) inline (💬), 0 in this summary" in summary(gitlab, mr)

    assert not any(r.method == "PUT" and "resolved" in r.path for r in gitlab.requests)


def test_a_line_moved_by_lines_inserted_above_keeps_its_thread(
        gitlab: FakeGitLab, llm: FakeOpenAI, mr: dict[str, Any], tmp_path: Path) -> None:
    review(gitlab, llm, mr, tmp_path, [said(WORDINGS[0])])
    moved = ["# The users' store.", "", *DB]
    push(gitlab, mr, "d", moved)

    review(gitlab, llm, mr, tmp_path, [said(WORDINGS[1], line=QUERY + 2)])

    assert state(gitlab, mr) == [(QUERY, WORDINGS[0][0], False, [])]
    assert "since the last run: 0 new, 0 resolved" in summary(gitlab, mr)


def test_a_thread_posted_before_markers_were_versioned_is_recognised(
        gitlab: FakeGitLab, llm: FakeOpenAI, mr: dict[str, Any], tmp_path: Path) -> None:
    # As the previous version wrote it: its fingerprint (rule, path, line text) first.
    old = (f"<!-- reviewer:finding {legacy_fingerprint('SEC-001', 'db.py', DB[QUERY - 1])} -->"
           "\n**critical** · SEC-001 · **SQL injection**\n\nuser_id reaches the query.")
    bot = python_gitlab.Gitlab(gitlab.url, private_token=TOKEN)
    bot.projects.get(mr["project_id"], lazy=True).mergerequests.get(4, lazy=True) \
        .discussions.create({"body": old, "position": {
            "position_type": "text", "base_sha": "a" * 40, "start_sha": "b" * 40,
            "head_sha": "c" * 40, "old_path": "db.py", "new_path": "db.py",
            "new_line": QUERY}})

    review(gitlab, llm, mr, tmp_path, [finding("db.py", QUERY, "critical", rule="SEC-001",
                                               title="Injection", message="Reworded.")])

    assert state(gitlab, mr) == [(QUERY, "SQL injection", False, [])]
    body = summary(gitlab, mr)
    assert "1 finding(s) inline (💬), 0 in this summary" in body
    assert "since the last run: 0 new, 0 resolved" in body


def test_a_thread_a_person_resolved_stays_resolved_whatever_the_wording(
        gitlab: FakeGitLab, llm: FakeOpenAI, mr: dict[str, Any], tmp_path: Path) -> None:
    review(gitlab, llm, mr, tmp_path, [said(WORDINGS[0])])
    [thread] = threads(gitlab, mr)
    human = python_gitlab.Gitlab(gitlab.url, private_token="glpat-alice-token")
    human.projects.get(mr["project_id"], lazy=True).mergerequests.get(4, lazy=True) \
        .discussions.update(thread["id"], {"resolved": True})
    push(gitlab, mr, "d", DB)

    review(gitlab, llm, mr, tmp_path, [said(WORDINGS[2])])

    assert state(gitlab, mr) == [(QUERY, WORDINGS[0][0], True, [])]
    assert "since the last run: 0 new, 0 resolved" in summary(gitlab, mr)


def test_a_thread_on_a_file_this_run_could_not_review_stays_open(
        gitlab: FakeGitLab, llm: FakeOpenAI, tmp_path: Path) -> None:
    # Nothing said the finding is gone: its file's request failed. Resolving its thread
    # "No longer reported" would tell the author a problem went away that nobody re-read.
    gitlab.add_user("reviewer-bot", TOKEN)
    project = gitlab.add_project("group/two")
    rows = "".join(f"+value_{i} = compute({i}, retries=3)\n" for i in range(200))
    files = [{"old_path": p, "new_path": p, "new_file": True,
              "diff": f"@@ -0,0 +1,200 @@\n{rows}"} for p in ("a.py", "b.py")]
    mr = gitlab.add_merge_request(project["id"], iid=5, title="Two", files=files)

    def answers(fail_b: bool) -> Any:
        def respond(body: dict[str, Any]) -> Reply | str:
            path = "b.py" if "File: b.py" in body["messages"][-1]["content"] else "a.py"
            if fail_b and path == "b.py":
                return Reply(status=400, error="prompt could not be processed")
            return answer(findings=[finding(path, 3, "major", title=f"Problem in {path}")])
        return respond

    flags = ("--full", "--max-input-tokens", "3000", "--retries", "0")
    llm.responder = answers(fail_b=False)
    first = run_cli("review", *flags, env=env(gitlab, llm, mr, tmp_path))
    assert first.code == 0, first.stderr
    llm.responder = answers(fail_b=True)
    second = run_cli("review", *flags, env=env(gitlab, llm, mr, tmp_path))

    assert second.code == 4, second.stderr  # b.py not reviewed this time
    open_threads = {d["notes"][0]["position"]["new_path"]: d for d in threads(gitlab, mr)}
    assert sorted(open_threads) == ["a.py", "b.py"]
    assert not any(n["resolved"] for d in open_threads.values() for n in d["notes"])
    assert all(len(d["notes"]) == 1 for d in open_threads.values())  # no reply either
