"""--deadline bounds the whole run: no request starts after it; what was answered is posted."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from reviewer.model import Review
from tests.conftest import API_KEY, TOKEN, answer, clean_env, run_cli
from tests.gitlab_standin import FakeGitLab
from tests.openai_standin import FakeOpenAI, Reply
from tests.test_coverage import big_file, spec_with_one_rule


def run(gitlab: FakeGitLab, llm: FakeOpenAI, tmp_path: Path, files: list[dict[str, Any]],
        *flags: str) -> tuple[int, str, Review | None, float]:
    gitlab.add_user("reviewer-bot", TOKEN)
    project = gitlab.add_project("group/app")
    gitlab.add_merge_request(project["id"], iid=7, title="Slow", files=files)
    out = tmp_path / "r.json"
    env = clean_env(CI_SERVER_URL=gitlab.url, CI_MERGE_REQUEST_PROJECT_ID=str(project["id"]),
                    CI_MERGE_REQUEST_IID="7", REVIEWER_GITLAB_TOKEN=TOKEN,
                    REVIEWER_BASE_URL=llm.url, REVIEWER_MODEL="test-model",
                    REVIEWER_API_KEY=API_KEY, REVIEWER_OUTPUT=str(out))
    started = time.monotonic()
    result = run_cli("review", "--spec", str(spec_with_one_rule(tmp_path)),
                     "--max-input-tokens", "2000", *flags, env=env)
    elapsed = time.monotonic() - started
    written = Review.model_validate_json(out.read_text()) if out.exists() else None
    return result.code, result.stderr, written, elapsed


def test_what_was_answered_before_the_deadline_is_posted_and_the_rest_not_reviewed(
        gitlab: FakeGitLab, llm: FakeOpenAI, tmp_path: Path) -> None:
    llm.queue(answer(score=81), Reply(content=answer(), delay=30))

    code, err, written, elapsed = run(gitlab, llm, tmp_path,
                                      [big_file("a.py"), big_file("b.py"), big_file("c.py")],
                                      "--deadline", "4", "--timeout", "60", "--concurrency", "1")

    assert code == 4, err
    assert elapsed < 15  # the deadline, plus the process's start, not the 30 s answer
    assert written is not None and written.score == 81
    assert written.files_reviewed == ["a.py"]
    assert [(n.path, n.reason) for n in written.coverage.not_reviewed] == [
        ("b.py", "not answered before --deadline"), ("c.py", "not answered before --deadline")]
    assert "--deadline reached" in err
    assert len(llm.requests) == 2  # c.py was never sent


def test_a_deadline_before_any_answer_exits_1_naming_it(
        gitlab: FakeGitLab, llm: FakeOpenAI, tmp_path: Path) -> None:
    llm.queue(Reply(content=answer(), delay=30))

    code, err, written, elapsed = run(gitlab, llm, tmp_path, [big_file("a.py")],
                                      "--deadline", "3", "--timeout", "60")

    assert code == 1
    assert elapsed < 15
    assert "--deadline" in err and err.count("\n") == 1
    assert written is None
    assert [r for r in gitlab.requests if r.method != "GET"] == []  # nothing posted
