"""A stable prefix across runs, through the real CLI: two reviews of one change with the same spec
and model send the same bytes up to the per-run data marker, so a server's prefix cache hits."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

from tests.conftest import answer, run_cli
from tests.openai_standin import FakeOpenAI, Served

MARKER = re.compile(r"mr-data-[0-9a-f]{8}")


def make_repo(tmp_path: Path, files: int = 30) -> Path:
    """A repository whose uncommitted change touches files modules and one test."""
    repo = tmp_path / "repo"
    (repo / "src").mkdir(parents=True)
    (repo / "tests").mkdir()
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    paths = [repo / "src" / f"m{n:02d}.py" for n in range(files)] + [repo / "tests/test_m.py"]
    for path in paths:
        path.write_text("".join(f"value_{i} = {i}\n" for i in range(60)), encoding="utf-8")
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "base"], check=True)
    for path in paths:
        path.write_text("".join(f"value_{i} = compute({i}, retries=3)\n" for i in range(60)),
                        encoding="utf-8")
    return repo


def review(fake: FakeOpenAI, repo: Path, out: Path) -> list[dict[str, Any]]:
    """The chat requests one run sends, in order of their first file."""
    seen = len(fake.requests)
    result = run_cli("review", "--local", "--repo", str(repo), "--base-url", fake.url,
                     "--model", "test-model", "-o", str(out), "--concurrency", "4")
    assert result.code == 0, result.stderr
    sent = fake.requests[seen:]
    return sorted(sent, key=lambda body: body["messages"][1]["content"].split("File: ")[1])


def test_two_runs_share_every_byte_before_the_data_marker(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    with FakeOpenAI(served=Served("llamacpp", context=8192), cache="reported") as fake:
        fake.responder = lambda body: answer()
        first = review(fake, repo, tmp_path / "1.json")
        second = review(fake, repo, tmp_path / "2.json")
    assert len(first) == len(second) > 2
    tags = set()
    for a, b in zip(first, second, strict=True):
        assert a["messages"][0] == b["messages"][0]  # the system message, byte for byte
        assert {k: v for k, v in a.items() if k != "messages"} == \
            {k: v for k, v in b.items() if k != "messages"}
        user_a, user_b = a["messages"][1]["content"], b["messages"][1]["content"]
        tag_a, tag_b = MARKER.search(user_a), MARKER.search(user_b)
        assert tag_a and tag_b and tag_a.group() != tag_b.group()
        assert user_a.replace(tag_a.group(), tag_b.group()) == user_b
        assert MARKER.search(a["messages"][0]["content"]) is None
        tags.add(tag_a.group())
    assert len(tags) == 1  # one marker per run


def test_the_requests_of_a_run_share_the_instructions_and_general_rules(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    with FakeOpenAI(served=Served("llamacpp", context=8192), cache="reported") as fake:
        fake.responder = lambda body: answer()
        sent = review(fake, repo, tmp_path / "1.json")
    systems = [body["messages"][0]["content"] for body in sent]
    common = min(systems, key=len)
    assert all(s.startswith(common) for s in systems)
    assert "COR-001" in common and "SEC-001" in common  # rules for every file
    scoped = [s for s in systems if "TST-002" in s]  # the test-only rule, last
    assert scoped and all(s.index("TST-002") > s.index("TST-001") for s in scoped)
