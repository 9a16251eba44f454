"""`reviewer review --local`: the change comes from a real git repository, no GitLab."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from reviewer.model import Review
from tests.conftest import answer, clean_env, finding, run_cli
from tests.openai_standin import FakeOpenAI


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com",
                           "-c", "init.defaultBranch=main", *args], cwd=repo, check=True,
                          capture_output=True, text=True).stdout.strip()


def commit(repo: Path, message: str, files: dict[str, str]) -> None:
    """Write files (name: text) and commit everything."""
    for name, text in files.items():
        (repo / name).write_text(text)
    git(repo, "add", ".")
    git(repo, "commit", "-qm", message)


def make_repo(path: Path, branch: str = "main") -> Path:
    path.mkdir()
    git(path, "init", "-q", "-b", branch)
    commit(path, "base", {"app.py": "def add(a, b):\n    return a + b\n", "old.txt": "bye\n"})
    return path


def review(repo: Path, llm: FakeOpenAI, *args: str, cwd: Path | None = None,
           env: dict[str, str] | None = None) -> tuple[int, str, Review]:
    out = repo.parent / "review.json"
    result = run_cli("review", "--local", "--base-url", llm.url, "--model", "m", "-o", str(out),
                     *args, cwd=cwd or repo, env=env)
    review = Review.model_validate_json(out.read_text()) if out.exists() else None
    assert review is not None, result.stderr
    return result.code, result.stdout, review


def sent_files(llm: FakeOpenAI) -> str:
    return "\n".join(m["content"] for r in llm.requests for m in r["messages"])


def test_working_tree_review_includes_staged_unstaged_and_untracked(
        tmp_path: Path, llm: FakeOpenAI) -> None:
    repo = make_repo(tmp_path / "repo")
    git(repo, "checkout", "-qb", "feature")
    (repo / "app.py").write_text("def add(a, b):\n    return a - b\n")
    (repo / "staged.py").write_text("X = 1\n")
    git(repo, "add", "staged.py")
    (repo / "untracked.py").write_text("Y = 2\n")
    (repo / "old.txt").unlink()
    llm.queue(answer(score=72, findings=[finding("app.py", 2, "major", title="Subtracts")]))

    code, stdout, result = review(repo, llm)

    assert code == 0
    assert sorted(result.files_reviewed) == ["app.py", "old.txt", "staged.py", "untracked.py"]
    assert result.local is not None
    assert result.local.base == "main" and result.local.head == "working tree"
    assert result.local.head_sha is None
    assert result.local.base_sha == git(repo, "rev-parse", "main")
    assert result.merge_request is None
    assert result.findings[0].placed
    assert "Score 72/100" in stdout and "Subtracts" in stdout
    assert "    2       -     return a + b" in sent_files(llm)


def test_range_review_ignores_the_working_tree(tmp_path: Path, llm: FakeOpenAI) -> None:
    repo = make_repo(tmp_path / "repo")
    git(repo, "checkout", "-qb", "feature")
    commit(repo, "Add f", {"feature.py": "def f():\n    return 1\n"})
    (repo / "dirty.py").write_text("uncommitted = True\n")
    llm.queue(answer())

    code, _, result = review(repo, llm, "--base", "main", "--head", "feature")

    assert code == 0
    assert result.files_reviewed == ["feature.py"]
    assert result.local is not None and result.local.head_sha == git(repo, "rev-parse", "HEAD")
    assert "Title: Add f" in sent_files(llm)


def test_range_starts_at_the_merge_base(tmp_path: Path, llm: FakeOpenAI) -> None:
    repo = make_repo(tmp_path / "repo")
    git(repo, "checkout", "-qb", "feature")
    commit(repo, "mine", {"mine.py": "A = 1\n"})
    git(repo, "checkout", "-q", "main")
    commit(repo, "theirs", {"theirs.py": "B = 2\n"})
    llm.queue(answer())

    _, _, result = review(repo, llm, "--base", "main", "--head", "feature")

    assert result.files_reviewed == ["mine.py"]  # not theirs.py, added on main since


def test_default_base_is_the_remotes_default_branch(tmp_path: Path, llm: FakeOpenAI) -> None:
    upstream = make_repo(tmp_path / "upstream", branch="trunk")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(upstream), str(clone)], check=True)
    git(clone, "checkout", "-qb", "feature")
    (clone / "new.py").write_text("Z = 3\n")
    llm.queue(answer())

    _, _, result = review(clone, llm)

    assert result.local is not None and result.local.base == "origin/trunk"
    assert result.files_reviewed == ["new.py"]


def test_default_base_falls_back_to_master(tmp_path: Path, llm: FakeOpenAI) -> None:
    repo = make_repo(tmp_path / "repo", branch="master")
    (repo / "app.py").write_text("changed = 1\n")
    llm.queue(answer())

    _, _, result = review(repo, llm, "--repo", str(repo), cwd=tmp_path)

    assert result.local is not None and result.local.base == "master"


def test_no_base_branch_is_a_usage_error(tmp_path: Path, llm: FakeOpenAI) -> None:
    repo = make_repo(tmp_path / "repo", branch="develop")
    result = run_cli("review", "--local", "--base-url", llm.url, cwd=repo)
    assert result.code == 2
    assert result.stderr == ("reviewer: error: cannot tell the base branch (no remote HEAD, main "
                             "or master): pass --base REF\n")


@pytest.mark.parametrize(("flags", "message"), [
    (["--base", "nope"], "--base 'nope' is not a commit"),
    (["--base", "main", "--head", "nope"], "--head 'nope' is not a commit"),
])
def test_unknown_refs_are_usage_errors(tmp_path: Path, llm: FakeOpenAI, flags: list[str],
                                       message: str) -> None:
    repo = make_repo(tmp_path / "repo")
    result = run_cli("review", "--local", "--base-url", llm.url, *flags, cwd=repo)
    assert result.code == 2
    assert message in result.stderr and result.stderr.count("\n") == 1


def test_outside_a_repository_is_a_usage_error(tmp_path: Path) -> None:
    result = run_cli("review", "--local", cwd=tmp_path)
    assert result.code == 2
    assert "--local needs a git repository" in result.stderr


def test_empty_change_asks_no_model(tmp_path: Path, llm: FakeOpenAI) -> None:
    repo = make_repo(tmp_path / "repo")
    code, stdout, result = review(repo, llm)
    assert code == 0
    assert llm.requests == []
    assert result.summary == "Nothing to review: the change is empty."
    # A review that read nothing never shows 100 or approve (DESIGN.md, exit codes).
    assert result.score is None and result.verdict == "comment"
    assert "Score 100/100" not in stdout


@pytest.mark.skipif(os.geteuid() != 0, reason="giving the checkout to another user needs root")
def test_a_checkout_owned_by_another_user_says_how_to_trust_it(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    # git's ownership check, reproduced without a second user: the checkout is "not safe" when
    # safe.directory lists only some other path.
    home = tmp_path / "home"
    home.mkdir()
    (home / ".gitconfig").write_text("[safe]\n\tdirectory = /elsewhere\n")
    os.chown(repo, 12345, 12345)
    env = clean_env(HOME=str(home))
    result = run_cli("review", "--local", "--repo", str(repo), env=env)
    assert result.code == 2
    assert f"git config --global --add safe.directory {repo}" in result.stderr


# --- kinds of change that are not code --------------------------------------------------------

def skipped(result: Review) -> dict[str, str]:
    return {s.path: s.reason for s in result.skipped_files}


@pytest.mark.parametrize("committed", [True, False], ids=["committed-range", "working-tree"])
def test_a_submodule_bump_is_skipped_naming_both_commits_whatever_the_users_config(
        tmp_path: Path, llm: FakeOpenAI, committed: bool) -> None:
    sub = make_repo(tmp_path / "sub")
    first = git(sub, "rev-parse", "HEAD")
    commit(sub, "second", {"app.py": "X = 2\n"})
    second = git(sub, "rev-parse", "HEAD")
    repo = make_repo(tmp_path / "repo")
    git(repo, "-c", "protocol.file.allow=always", "submodule", "--quiet", "add", str(sub),
        "libs/sub")
    git(repo, "-C", "libs/sub", "checkout", "-q", first)
    git(repo, "add", "libs/sub")
    git(repo, "commit", "-qm", "add the submodule")
    git(repo, "checkout", "-qb", "feature")
    git(repo, "-C", "libs/sub", "checkout", "-q", second)
    (repo / "libs/sub/app.py").write_text("dirty = True\n")  # not this repository's change
    if committed:
        git(repo, "commit", "-qam", "bump")
    config = tmp_path / "gitconfig"
    config.write_text("[diff]\n\tsubmodule = log\n\tignoreSubmodules = all\n")

    code, _, result = review(repo, llm, "--base", "main",
                             *(["--head", "feature"] if committed else []),
                             env=clean_env(GIT_CONFIG_GLOBAL=str(config)))

    assert code == 0
    assert skipped(result) == {"libs/sub": f"submodule libs/sub moved {first[:7]}..{second[:7]}"}
    assert result.files_reviewed == [] and llm.requests == []


def test_a_git_lfs_pointer_is_skipped_and_not_sent_to_the_model(tmp_path: Path,
                                                                llm: FakeOpenAI) -> None:
    repo = make_repo(tmp_path / "repo")
    git(repo, "checkout", "-qb", "feature")
    commit(repo, "add a model", {
        "model.onnx": "version https://git-lfs.github.com/spec/v1\noid sha256:"
                      "4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\n"
                      "size 133742\n",
        "load.py": "import onnx\n"})
    llm.responder = lambda body: answer()

    code, _, result = review(repo, llm, "--base", "main", "--head", "feature")

    assert code == 0
    assert result.files_reviewed == ["load.py"]
    assert skipped(result) == {"model.onnx": "Git LFS pointer"}
    assert "oid sha256" not in sent_files(llm)


def test_untracked_symlinks_and_nested_repositories_are_listed_not_dropped(
        tmp_path: Path, llm: FakeOpenAI) -> None:
    repo = make_repo(tmp_path / "repo")
    (repo / "assets").mkdir()
    (repo / "assets" / "a.txt").write_text("a\n")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "assets")
    (repo / "to-folder").symlink_to("assets")
    (repo / "to-file").symlink_to("app.py")
    (repo / "dangling").symlink_to("nowhere")
    nested = make_repo(repo / "vendored-checkout")
    llm.responder = lambda body: answer()

    code, _, result = review(repo, llm, "--base", "main")

    assert code == 0
    assert skipped(result) == {
        "to-folder": "symlink to assets", "to-file": "symlink to app.py",
        "dangling": "symlink to nowhere",
        "vendored-checkout": f"submodule vendored-checkout added at "
                             f"{git(nested, 'rev-parse', '--short=7', 'HEAD')}"}


# --- where people run it: CI clones, bare repositories ---------------------------------------

def diverged(tmp_path: Path) -> Path:
    """An upstream whose main moved on after feature branched off."""
    upstream = make_repo(tmp_path / "upstream")
    for n in range(3):
        commit(upstream, f"main {n}", {"app.py": f"N = {n}\n"})
    git(upstream, "checkout", "-qb", "feature")
    commit(upstream, "feature work", {"feature.py": "F = 1\n"})
    git(upstream, "checkout", "-q", "main")
    commit(upstream, "main moves on", {"old.txt": "later\n"})
    return upstream


def test_a_shallow_ci_clone_without_the_merge_base_says_how_to_fetch_it(
        tmp_path: Path, llm: FakeOpenAI) -> None:
    upstream = diverged(tmp_path)
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", "--depth", "1", "--branch", "feature",
                    f"file://{upstream}", str(clone)], check=True, env=clean_env())
    git(clone, "fetch", "-q", "--depth", "1", "origin", "main:refs/remotes/origin/main")

    result = run_cli("review", "--local", "--base", "origin/main", "--base-url", llm.url,
                     cwd=clone)

    assert result.code == 1
    assert result.stderr == (
        "reviewer: error: origin/main and HEAD have no common ancestor in this shallow clone: "
        "fetch the whole history (GIT_DEPTH: 0 in the CI job, or git fetch --unshallow), or "
        "pass --base a commit that exists here\n")


def test_a_base_a_shallow_clone_never_fetched_says_the_clone_is_shallow(
        tmp_path: Path, llm: FakeOpenAI) -> None:
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", "--depth", "1", "--branch", "feature",
                    f"file://{diverged(tmp_path)}", str(clone)], check=True, env=clean_env())

    result = run_cli("review", "--local", "--base", "origin/main", "--base-url", llm.url,
                     cwd=clone)

    assert result.code == 2
    assert result.stderr == (
        f"reviewer: error: --base 'origin/main' is not a commit in {clone}: this clone is "
        "shallow and may not have it (git fetch origin <branch>, or GIT_DEPTH: 0 in the CI "
        "job)\n")


def test_a_shallow_clone_reviews_once_unshallowed(tmp_path: Path, llm: FakeOpenAI) -> None:
    upstream = diverged(tmp_path)
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", "--depth", "1", "--branch", "feature",
                    f"file://{upstream}", str(clone)], check=True, env=clean_env())
    git(clone, "fetch", "-q", "--unshallow", "origin", "main:refs/remotes/origin/main")
    llm.responder = lambda body: answer()

    code, _, result = review(clone, llm, "--base", "origin/main", "--head", "HEAD")

    assert code == 0 and result.files_reviewed == ["feature.py"]


def test_unrelated_histories_say_there_is_no_common_ancestor(tmp_path: Path,
                                                             llm: FakeOpenAI) -> None:
    repo = make_repo(tmp_path / "repo")
    git(repo, "checkout", "-q", "--orphan", "other")
    commit(repo, "unrelated", {"x.py": "X = 1\n"})

    result = run_cli("review", "--local", "--base", "main", "--head", "other",
                     "--base-url", llm.url, cwd=repo)

    assert result.code == 1
    assert result.stderr == ("reviewer: error: main and other have no common ancestor "
                             "(unrelated histories): pass --base a commit that the change grew "
                             "from\n")


def test_a_bare_repository_without_head_is_a_usage_error(tmp_path: Path,
                                                         llm: FakeOpenAI) -> None:
    bare = tmp_path / "bare.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(make_repo(tmp_path / "repo")),
                    str(bare)], check=True, env=clean_env())

    result = run_cli("review", "--local", "--base", "main", "--base-url", llm.url, cwd=bare)

    assert result.code == 2
    assert result.stderr == ("reviewer: error: a bare repository has no working tree: "
                             "pass --head\n")


def test_a_bare_repository_with_head_reviews_the_range(tmp_path: Path, llm: FakeOpenAI) -> None:
    repo = make_repo(tmp_path / "repo")
    git(repo, "checkout", "-qb", "feature")
    commit(repo, "Add f", {"feature.py": "def f():\n    return 1\n"})
    bare = tmp_path / "bare.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(repo), str(bare)], check=True,
                   env=clean_env())
    llm.responder = lambda body: answer()

    code, _, result = review(bare, llm, "--base", "main", "--head", "feature", cwd=bare)

    assert code == 0
    assert result.files_reviewed == ["feature.py"]
    assert result.local is not None and result.local.head_sha == git(repo, "rev-parse", "HEAD")


def test_a_repo_that_does_not_exist_is_named_as_missing(tmp_path: Path) -> None:
    result = run_cli("review", "--local", "--repo", str(tmp_path / "nowhere"))

    assert result.code == 2
    assert result.stderr == f"reviewer: error: --repo {tmp_path / 'nowhere'} does not exist\n"
