"""A 33 KB file of one hunk, the kind a real release range left unreviewed: at a 32k context and
at --max-input-tokens 6000 every line reaches the model, and a finding on its 600th line is
placed on that line."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from reviewer.model import Review
from tests.conftest import API_KEY, TOKEN, answer, clean_env, finding, run_cli
from tests.gitlab_standin import FakeGitLab
from tests.openai_standin import FakeOpenAI, Served

LINES = 800
TARGET = 600
ROW = re.compile(r"^ {0,5}\d* +(\d+) \+ ", re.MULTILINE)  # an added row: "      600 + code"


def core_module() -> dict[str, Any]:
    rows = "".join(f"+    result_{i:04d} = process(batch[{i:04d}], retries=3)  # step\n"
                   for i in range(1, LINES + 1))
    return {"old_path": "src/core.py", "new_path": "src/core.py", "new_file": True,
            "diff": f"@@ -0,0 +1,{LINES} @@\n{rows}"}


def respond(seen: set[int]) -> Any:
    """Answers with a finding on line TARGET when the request shows it; notes the lines shown."""
    def answer_for(body: dict[str, Any]) -> str:
        shown = {int(n) for n in ROW.findall(body["messages"][-1]["content"])}
        seen.update(shown)
        found = [finding("src/core.py", TARGET, "major", title="Retries hide errors")]
        return answer(findings=found if TARGET in shown else [])
    return answer_for


@pytest.mark.parametrize("flags", [(), ("--max-input-tokens", "6000")],
                         ids=["32k-context", "6000-tokens"])
def test_a_33kb_single_hunk_file_is_reviewed_whole_and_its_600th_line_placed(
        flags: tuple[str, ...], gitlab: FakeGitLab, tmp_path: Path) -> None:
    module = core_module()
    assert len(module["diff"]) > 33_000
    gitlab.add_user("reviewer-bot", TOKEN)
    project = gitlab.add_project("group/app")
    gitlab.add_merge_request(project["id"], iid=7, title="Core", files=[module])
    seen: set[int] = set()
    out = tmp_path / "review.json"
    with FakeOpenAI(served=Served("vllm", context=32768)) as llm:
        llm.responder = respond(seen)
        env = clean_env(CI_SERVER_URL=gitlab.url, CI_MERGE_REQUEST_PROJECT_ID=str(project["id"]),
                        CI_MERGE_REQUEST_IID="7", REVIEWER_GITLAB_TOKEN=TOKEN,
                        REVIEWER_BASE_URL=llm.url, REVIEWER_MODEL="test-model",
                        REVIEWER_API_KEY=API_KEY, REVIEWER_OUTPUT=str(out))
        result = run_cli("review", "--dry-run", *flags, env=env)
        requests = len(llm.requests)

    assert result.code == 0, result.stderr
    assert seen == set(range(1, LINES + 1))  # every line reached the model
    assert (requests >= 2) if flags else (requests == 1)  # split only where it must be
    review = Review.model_validate_json(out.read_text())
    assert review.coverage.complete
    assert review.coverage.lines_reviewed == review.coverage.lines_total == LINES
    [placed] = [f for f in review.findings if f.line == TARGET]
    assert placed.placed and placed.path == "src/core.py"  # merged once, on its own line
