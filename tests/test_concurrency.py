"""--concurrency: model requests run in parallel, bounded; the review reads the same whatever
answers first."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

from reviewer.model import Review
from tests.conftest import API_KEY, TOKEN, answer, clean_env, finding, run_cli
from tests.gitlab_standin import FakeGitLab
from tests.openai_standin import FakeOpenAI, Reply
from tests.test_coverage import big_file, spec_with_one_rule

FILES = [big_file(f"m{n}.py") for n in range(8)]  # one request each at this budget


def review(gitlab: FakeGitLab, llm: FakeOpenAI, tmp_path: Path, *flags: str
           ) -> tuple[int, str, Review | None, float]:
    gitlab.add_user("reviewer-bot", TOKEN)
    project = gitlab.add_project("group/app")
    gitlab.add_merge_request(project["id"], iid=7, title="Many", files=FILES)
    out = tmp_path / "r.json"
    env = clean_env(CI_SERVER_URL=gitlab.url, CI_MERGE_REQUEST_PROJECT_ID=str(project["id"]),
                    CI_MERGE_REQUEST_IID="7", REVIEWER_GITLAB_TOKEN=TOKEN,
                    REVIEWER_BASE_URL=llm.url, REVIEWER_MODEL="test-model",
                    REVIEWER_API_KEY=API_KEY, REVIEWER_OUTPUT=str(out))
    started = time.monotonic()
    result = run_cli("review", "--dry-run", "--spec", str(spec_with_one_rule(tmp_path)),
                     "--max-input-tokens", "2000", *flags, env=env)
    written = Review.model_validate_json(out.read_text()) if out.exists() else None
    return result.code, result.stderr, written, time.monotonic() - started


def slow_answers(llm: FakeOpenAI, delay: float) -> dict[str, int]:
    """Each request answers after delay with a finding on its own file; counts the peak of
    requests in flight."""
    state = {"now": 0, "peak": 0}
    lock = threading.Lock()

    def respond(body: dict[str, Any]) -> str:
        text = body["messages"][-1]["content"]
        path = text.split("File: ")[1].split(" (")[0]
        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
        time.sleep(delay)
        with lock:
            state["now"] -= 1
        score = 50 + int(path[1])  # a different score per file, to see the merge's order
        return answer(score=score, summary=f"About {path}.",
                      findings=[finding(path, 3, "minor", title=f"On {path}")])

    llm.responder = respond
    return state


def test_requests_run_in_parallel_up_to_the_bound_and_merge_in_a_fixed_order(
        gitlab: FakeGitLab, llm: FakeOpenAI, tmp_path: Path) -> None:
    state = slow_answers(llm, 1.0)

    code, err, written, _ = review(gitlab, llm, tmp_path, "--concurrency", "4")

    assert code == 0, err
    assert state["peak"] == 4  # the speed itself is measured in bench/, not asserted here
    assert written is not None
    assert [f.path for f in written.findings] == [f"m{n}.py" for n in range(8)]
    assert written.summary == "\n\n".join(f"About m{n}.py." for n in range(8))


def test_concurrency_1_sends_one_request_at_a_time(
        gitlab: FakeGitLab, llm: FakeOpenAI, tmp_path: Path) -> None:
    state = slow_answers(llm, 0.2)

    code, err, _, _ = review(gitlab, llm, tmp_path, "--concurrency", "1")

    assert code == 0, err
    assert state["peak"] == 1


def test_parallel_requests_refused_a_format_step_down_once(tmp_path: Path,
                                                          gitlab: FakeGitLab) -> None:
    llm = FakeOpenAI(reject_formats=["json_schema"], models=()).start()
    try:
        llm.responder = lambda body: Reply(content=answer(score=70))
        code, err, written, _ = review(gitlab, llm, tmp_path, "--concurrency", "8")
    finally:
        llm.stop()

    assert code == 0, err
    assert written is not None and written.model.structured_output == "json_object"
    formats = [json.dumps(r.get("response_format", {}).get("type")) for r in llm.requests]
    assert formats.count('"json_object"') == 8  # every file asked once in the mode that works
    assert '"plain"' not in formats and "null" not in formats


def test_every_files_first_part_is_asked_before_any_files_second(
        gitlab: FakeGitLab, llm: FakeOpenAI, tmp_path: Path) -> None:
    # Under --deadline, a large file's many pieces must not starve the small files after it.
    lines = "".join(f"+value_{i} = compute({i}, retries=3)\n" for i in range(240))
    huge = {"old_path": "a/huge.py", "new_path": "a/huge.py", "new_file": True,
            "diff": f"@@ -0,0 +1,240 @@\n{lines}"}
    gitlab.add_user("reviewer-bot", TOKEN)
    project = gitlab.add_project("group/app")
    gitlab.add_merge_request(project["id"], iid=7, title="Huge and small",
                             files=[huge, big_file("b/one.py"), big_file("c/two.py")])
    asked: list[list[str]] = []

    def respond(body: dict[str, Any]) -> str:
        text = body["messages"][-1]["content"]
        asked.append([line.split("File: ")[1] for line in text.splitlines()
                      if line.startswith("File: ")])
        return answer()

    llm.responder = respond
    out = tmp_path / "r.json"
    env = clean_env(CI_SERVER_URL=gitlab.url, CI_MERGE_REQUEST_PROJECT_ID=str(project["id"]),
                    CI_MERGE_REQUEST_IID="7", REVIEWER_GITLAB_TOKEN=TOKEN,
                    REVIEWER_BASE_URL=llm.url, REVIEWER_MODEL="test-model",
                    REVIEWER_API_KEY=API_KEY, REVIEWER_OUTPUT=str(out))
    result = run_cli("review", "--dry-run", "--spec", str(spec_with_one_rule(tmp_path)),
                     "--max-input-tokens", "2000", "--concurrency", "1", env=env)

    assert result.code == 0, result.stderr
    firsts = [n for n, files in enumerate(asked)
              if any("[part 1 of" in f or "[part" not in f for f in files)]
    assert len(asked) > len(firsts) >= 2  # the huge file went in several parts
    assert firsts == list(range(len(firsts)))  # every first part before any later one
    assert any(f.startswith("b/one.py") for f in asked[1] + asked[0])
    written = Review.model_validate_json(out.read_text())
    assert written.coverage.complete
    # Merged in the requests' own order, whatever order they were asked in.
    assert written.files_reviewed == ["a/huge.py", "b/one.py", "c/two.py"]
