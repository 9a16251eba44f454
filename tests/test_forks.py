"""Fork merge requests: the review goes to the project the MR targets, also from a pipeline run
by hand in the fork (which has no merge request variables)."""

from __future__ import annotations

from pathlib import Path

from reviewer.render import MARKER
from tests.conftest import API_KEY, TOKEN, answer, clean_env, run_cli
from tests.gitlab_standin import FakeGitLab
from tests.openai_standin import FakeOpenAI

FILES = [{"old_path": "app.py", "new_path": "app.py", "new_file": True,
          "diff": "@@ -0,0 +1 @@\n+x = 1\n"}]


def manual_pipeline_in(gitlab: FakeGitLab, llm: FakeOpenAI, project_id: int, out: Path,
                       branch: str = "feature") -> dict[str, str]:
    """A pipeline run by hand (Run pipeline) in project_id on branch: no CI_MERGE_REQUEST_*."""
    return clean_env(CI="true", CI_SERVER_URL=gitlab.url, CI_PIPELINE_SOURCE="web",
                     CI_PROJECT_ID=str(project_id), CI_COMMIT_REF_NAME=branch,
                     REVIEWER_GITLAB_TOKEN=TOKEN, REVIEWER_BASE_URL=llm.url,
                     REVIEWER_MODEL="test-model", REVIEWER_API_KEY=API_KEY,
                     REVIEWER_OUTPUT=str(out))


def summaries(gitlab: FakeGitLab, project_id: int, iid: int) -> list[str]:
    return [n["body"] for n in gitlab.notes(project_id, iid) if n["body"].startswith(MARKER)]


def test_a_run_by_hand_in_a_fork_reviews_its_mr_in_the_upstream_project(
        gitlab: FakeGitLab, llm: FakeOpenAI, tmp_path: Path) -> None:
    gitlab.add_user("reviewer-bot", TOKEN)
    upstream = gitlab.add_project("group/app")
    alice = gitlab.add_project("alice/app", forked_from=upstream["id"])
    bob = gitlab.add_project("bob/app", forked_from=upstream["id"])
    gitlab.add_merge_request(upstream["id"], iid=5, title="Alice's feature", files=FILES,
                             source_project_id=alice["id"])
    gitlab.add_merge_request(upstream["id"], iid=6, title="Bob's feature", files=FILES,
                             source_project_id=bob["id"])  # the same branch name, another fork
    llm.queue(answer(score=90))

    result = run_cli("review", env=manual_pipeline_in(gitlab, llm, alice["id"],
                                                      tmp_path / "r.json"))

    assert result.code == 0, result.stderr
    assert len(summaries(gitlab, upstream["id"], 5)) == 1
    assert summaries(gitlab, upstream["id"], 6) == []


def test_an_mr_inside_the_fork_is_found_in_the_fork(
        gitlab: FakeGitLab, llm: FakeOpenAI, tmp_path: Path) -> None:
    gitlab.add_user("reviewer-bot", TOKEN)
    upstream = gitlab.add_project("group/app")
    alice = gitlab.add_project("alice/app", forked_from=upstream["id"])
    gitlab.add_merge_request(alice["id"], iid=2, title="Inside the fork", files=FILES)
    llm.queue(answer(score=90))

    result = run_cli("review", env=manual_pipeline_in(gitlab, llm, alice["id"],
                                                      tmp_path / "r.json"))

    assert result.code == 0, result.stderr
    assert len(summaries(gitlab, alice["id"], 2)) == 1


def test_a_fork_branch_with_mrs_in_the_fork_and_upstream_asks_which(
        gitlab: FakeGitLab, llm: FakeOpenAI, tmp_path: Path) -> None:
    gitlab.add_user("reviewer-bot", TOKEN)
    upstream = gitlab.add_project("group/app")
    alice = gitlab.add_project("alice/app", forked_from=upstream["id"])
    gitlab.add_merge_request(alice["id"], iid=2, title="Inside", files=FILES)
    gitlab.add_merge_request(upstream["id"], iid=5, title="Upstream", files=FILES,
                             source_project_id=alice["id"])

    result = run_cli("review", env=manual_pipeline_in(gitlab, llm, alice["id"],
                                                      tmp_path / "r.json"))

    assert result.code == 1
    assert "2 open merge requests (!2, !5) have source branch 'feature'" in result.stderr
    assert llm.requests == []


def test_a_merge_request_pipeline_of_a_fork_posts_to_the_target_project(
        gitlab: FakeGitLab, llm: FakeOpenAI, tmp_path: Path) -> None:
    gitlab.add_user("reviewer-bot", TOKEN)
    upstream = gitlab.add_project("group/app")
    alice = gitlab.add_project("alice/app", forked_from=upstream["id"])
    gitlab.add_merge_request(upstream["id"], iid=5, title="Alice's feature", files=FILES,
                             source_project_id=alice["id"])
    llm.queue(answer(score=90))
    env = manual_pipeline_in(gitlab, llm, alice["id"], tmp_path / "r.json")
    env |= {"CI_PIPELINE_SOURCE": "merge_request_event", "CI_MERGE_REQUEST_IID": "5",
            "CI_MERGE_REQUEST_PROJECT_ID": str(upstream["id"])}

    result = run_cli("review", env=env)

    assert result.code == 0, result.stderr
    assert len(summaries(gitlab, upstream["id"], 5)) == 1
