"""Inline threads on the GitLab stand-in, which checks positions exactly like GitLab."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import gitlab as python_gitlab
import pytest

from reviewer.render import MARKER
from tests.conftest import TOKEN, answer, clean_env, finding, run_cli
from tests.gitlab_standin import FakeGitLab
from tests.openai_standin import FakeOpenAI

APP = """\
@@ -1,4 +1,5 @@
 import os
-import sys
+import re
+import sys
 x = compute(a)
 def main():
@@ -20,3 +21,2 @@ def main():
     x = 1
-    y = 2
     return x
"""
NEW_FILE = ["def add_one(x):", "    return x+1", ""]
FILES: list[dict[str, Any]] = [
    {"old_path": "src/app.py", "new_path": "src/app.py", "diff": APP},
    {"old_path": "old/name.py", "new_path": "new/name.py", "renamed_file": True,
     "diff": "@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n"},
    {"old_path": "src/new.py", "new_path": "src/new.py", "new_file": True,
     "diff": "@@ -0,0 +1,3 @@\n" + "".join(f"+{ln}\n" for ln in NEW_FILE)},
    {"old_path": "legacy.py", "new_path": "legacy.py", "deleted_file": True,
     "diff": "@@ -1,2 +0,0 @@\n-x = 1\n-y = 2\n"},
]
# Every kind of line, with the position GitLab needs for it: (new_line, old_line).
KINDS: dict[str, tuple[dict[str, Any], tuple[int | None, int | None]]] = {
    "added": (finding("src/app.py", 2, "minor", title="added"), (2, None)),
    "removed": (finding("src/app.py", 2, "minor", side="old", title="removed"), (None, 2)),
    "context": (finding("src/app.py", 4, "minor", title="context"), (4, 3)),
    "first of hunk": (finding("src/app.py", 1, "minor", title="first"), (1, 1)),
    "last of hunk": (finding("src/app.py", 5, "minor", title="last"), (5, 4)),
    "second hunk": (finding("src/app.py", 22, "minor", title="second hunk"), (22, 22)),
    "renamed": (finding("new/name.py", 2, "minor", title="renamed"), (2, None)),
    "new file": (finding("src/new.py", 1, "minor", title="new file"), (1, None)),
    "deleted": (finding("legacy.py", 2, "minor", side="old", title="deleted"), (None, 2)),
    "range": (finding("src/app.py", 2, "minor", rule="SEC-001", title="range", end_line=3),
              (3, None)),
}


@pytest.fixture
def mr(gitlab: FakeGitLab) -> dict[str, Any]:
    gitlab.add_user("reviewer-bot", TOKEN)
    gitlab.add_user("alice", "glpat-alice-token")
    project = gitlab.add_project("group/app")
    return gitlab.add_merge_request(project["id"], iid=4, title="Inline", files=FILES)


def env(gitlab: FakeGitLab, llm: FakeOpenAI, mr: dict[str, Any], tmp_path: Path,
        **extra: str) -> dict[str, str]:
    return clean_env(CI_SERVER_URL=gitlab.url, CI_MERGE_REQUEST_PROJECT_ID=str(mr["project_id"]),
                     CI_MERGE_REQUEST_IID=str(mr["iid"]), REVIEWER_GITLAB_TOKEN=TOKEN,
                     REVIEWER_BASE_URL=llm.url, REVIEWER_MODEL="m",
                     REVIEWER_OUTPUT=str(tmp_path / "review.json"), **extra)


def threads(gitlab: FakeGitLab, mr: dict[str, Any]) -> list[dict[str, Any]]:
    """The discussions that are not the summary."""
    return [d for d in gitlab.discussions(mr["project_id"], mr["iid"])
            if not d["notes"][0]["body"].startswith(MARKER)]


def summary(gitlab: FakeGitLab, mr: dict[str, Any]) -> str:
    [body] = [d["notes"][0]["body"] for d in gitlab.discussions(mr["project_id"], mr["iid"])
              if d["notes"][0]["body"].startswith(MARKER)]
    return body


def by_title(gitlab: FakeGitLab, mr: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out = {}
    for discussion in threads(gitlab, mr):
        title = re.search(r"· \*\*(.+?)\*\*", discussion["notes"][0]["body"])
        assert title, discussion
        assert title.group(1) not in out, f"duplicate thread for {title.group(1)}"
        out[title.group(1)] = discussion
    return out


def review(gitlab: FakeGitLab, llm: FakeOpenAI, mr: dict[str, Any], tmp_path: Path,
           findings: list[dict[str, Any]], *args: str) -> str:
    llm.queue(answer(findings=findings))
    result = run_cli("review", *args, env=env(gitlab, llm, mr, tmp_path))
    assert result.code == 0, result.stderr
    return result.stdout


def test_a_finding_on_every_kind_of_line_lands_as_a_diffnote_in_place(
        gitlab: FakeGitLab, llm: FakeOpenAI, mr: dict[str, Any], tmp_path: Path) -> None:
    review(gitlab, llm, mr, tmp_path, [f for f, _ in KINDS.values()])

    posted = by_title(gitlab, mr)
    assert len(posted) == len(KINDS)
    for kind, (found, (new_line, old_line)) in KINDS.items():
        note = posted[found["title"]]["notes"][0]
        assert note["type"] == "DiffNote", kind
        position = note["position"]
        assert (position.get("new_line"), position.get("old_line")) == (new_line, old_line), kind
        assert position["new_path"] == found["path"] or position["old_path"] == found["path"]
        assert position["head_sha"] == "c" * 40
    assert "line_range" in posted["range"]["notes"][0]["position"]
    assert f"{len(KINDS)} finding(s) inline (💬), 0 in this summary" in summary(gitlab, mr)
    assert "refused" not in summary(gitlab, mr)


def test_three_runs_keep_one_thread_per_finding_and_resolve_gone_ones(
        gitlab: FakeGitLab, llm: FakeOpenAI, mr: dict[str, Any], tmp_path: Path) -> None:
    a, b, c, d, e = (KINDS[k][0] for k in ("added", "removed", "context", "first of hunk",
                                             "last of hunk"))
    review(gitlab, llm, mr, tmp_path, [a, b, c])
    gitlab.push(mr["project_id"], 4, files=FILES, head_sha="d" * 40)
    review(gitlab, llm, mr, tmp_path, [a, c, d])
    # A person resolves the "context" thread: it must stay resolved and never come back.
    human = python_gitlab.Gitlab(gitlab.url, private_token="glpat-alice-token")
    project = human.projects.get(mr["project_id"], lazy=True)
    project.mergerequests.get(4, lazy=True).discussions.update(
        by_title(gitlab, mr)["context"]["id"], {"resolved": True})
    gitlab.push(mr["project_id"], 4, files=FILES, head_sha="e" * 40)
    out = review(gitlab, llm, mr, tmp_path, [a, c, e])

    posted = by_title(gitlab, mr)
    assert sorted(posted) == ["added", "context", "first", "last", "removed"]
    state = {t: (d["notes"][0]["resolved"], [n["body"] for n in d["notes"][1:]])
             for t, d in posted.items()}
    assert state == {
        "added": (False, []),
        "removed": (True, [f"No longer reported at {'d' * 12}."]),
        "context": (True, []),
        "first": (True, [f"No longer reported at {'e' * 12}."]),
        "last": (False, []),
    }
    assert "since the last run: 1 new, 1 resolved" in summary(gitlab, mr)
    assert "(3 inline, 1 new, 1 resolved)" in out
    assert not any(r.method == "DELETE" for r in gitlab.requests)


def test_a_suggestion_applied_as_gitlab_does_gives_the_intended_code(
        gitlab: FakeGitLab, llm: FakeOpenAI, mr: dict[str, Any], tmp_path: Path) -> None:
    fix = finding("src/new.py", 2, "minor", title="spacing", suggestion="return x + 1")
    review(gitlab, llm, mr, tmp_path, [fix])

    note = by_title(gitlab, mr)["spacing"]["notes"][0]
    block = re.search(r"^```suggestion:-(\d+)\+(\d+)\n(.*?)\n```$", note["body"],
                      re.DOTALL | re.MULTILINE)
    assert block, note["body"]
    above, below, text = int(block.group(1)), int(block.group(2)), block.group(3)
    line = note["position"]["new_line"]
    lines = list(NEW_FILE)
    lines[line - 1 - above:line + below] = text.split("\n")
    assert lines == ["def add_one(x):", "    return x + 1", ""]


def test_refused_positions_fall_back_to_the_summary_and_the_run_succeeds(
        gitlab: FakeGitLab, llm: FakeOpenAI, mr: dict[str, Any], tmp_path: Path) -> None:
    def push_while_thinking(body: dict[str, Any]) -> str:
        # A push lands while the model answers: the SHAs the run read are no longer current.
        gitlab.push(mr["project_id"], 4, files=FILES, head_sha="f" * 40)
        return answer(findings=[KINDS["added"][0], KINDS["context"][0]])
    llm.responder = push_while_thinking

    result = run_cli("review", env=env(gitlab, llm, mr, tmp_path))

    assert result.code == 0, result.stderr
    assert threads(gitlab, mr) == []
    body = summary(gitlab, mr)
    assert "0 finding(s) inline (💬), 2 in this summary" in body
    assert "GitLab refused the position of 2, shown here instead" in body
    assert "**added**" in body and "**context**" in body  # in the details section


def test_max_inline_keeps_the_most_severe_inline_and_the_rest_in_the_summary(
        gitlab: FakeGitLab, llm: FakeOpenAI, mr: dict[str, Any], tmp_path: Path) -> None:
    findings = [finding("src/app.py", 2, "minor", title="minor one"),
                finding("src/app.py", 4, "critical", title="critical one"),
                finding("src/app.py", 5, "major", title="major one")]
    review(gitlab, llm, mr, tmp_path, findings, "--max-inline", "2")

    assert sorted(by_title(gitlab, mr)) == ["critical one", "major one"]
    assert "2 finding(s) inline (💬), 1 in this summary" in summary(gitlab, mr)


def test_no_inline_posts_only_the_summary(gitlab: FakeGitLab, llm: FakeOpenAI,
                                          mr: dict[str, Any], tmp_path: Path) -> None:
    review(gitlab, llm, mr, tmp_path, [KINDS["added"][0]], "--no-inline")
    assert threads(gitlab, mr) == []
    assert "**added**" in summary(gitlab, mr)


def test_another_users_thread_with_our_marker_is_never_touched(
        gitlab: FakeGitLab, llm: FakeOpenAI, mr: dict[str, Any], tmp_path: Path) -> None:
    review(gitlab, llm, mr, tmp_path, [KINDS["added"][0]])
    [ours] = threads(gitlab, mr)
    gitlab.add_discussion(mr["project_id"], 4, ours["notes"][0]["body"], "alice")

    review(gitlab, llm, mr, tmp_path, [])

    notes = [d["notes"] for d in threads(gitlab, mr)]
    assert [(n[0]["author"]["username"], n[0]["resolved"], len(n)) for n in notes] == [
        ("reviewer-bot", True, 2), ("alice", False, 1)]


def test_code_quality_report_is_written_in_ci(gitlab: FakeGitLab, llm: FakeOpenAI,
                                              mr: dict[str, Any], tmp_path: Path) -> None:
    report = tmp_path / "gl-code-quality-report.json"
    llm.queue(answer(findings=[KINDS["added"][0], finding("src/app.py", 90, "major"),
                               finding("ghost.py", 3, "major")]))
    result = run_cli("review", env=env(gitlab, llm, mr, tmp_path,
                                       REVIEWER_CODEQUALITY=str(report)))
    assert result.code == 0, result.stderr
    entries = json.loads(report.read_text())
    # Unplaced findings on files of the change are reported; a file the change does not have
    # (the model invented it) would point the widget nowhere.
    assert [(e["location"]["path"], e["location"]["lines"]["begin"], e["severity"])
            for e in entries] == [("src/app.py", 2, "minor"), ("src/app.py", 90, "major")]
