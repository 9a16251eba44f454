"""Offline mode: the change is a range of a local git repository, read with GitPython."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import git

from reviewer.diff import Change, split_patch
from reviewer.errors import GitError, UsageError

# Fixed options so a user's git config (noprefix, external diff tools, colour) cannot change
# what we parse.
DIFF_OPTIONS = ("--no-color", "--no-ext-diff", "-M", "-U3", "--src-prefix=a/", "--dst-prefix=b/")


@dataclass(frozen=True)
class LocalChange:
    repository: str
    base: str
    head: str
    base_sha: str
    head_sha: str | None  # None: the working tree
    title: str
    changes: tuple[Change, ...]


def open_repo(path: Path) -> git.Repo:
    """The git repository at or above path."""
    try:
        return git.Repo(path, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise UsageError(f"--local needs a git repository; {path.resolve()} is not in one") \
            from None


def default_base(repo: git.Repo) -> str:
    """The remote's default branch, else main or master."""
    for remote in repo.remotes:
        try:
            ref = repo.git.symbolic_ref(f"refs/remotes/{remote.name}/HEAD", "--short")
        except git.GitCommandError:
            continue
        if ref:
            return str(ref)
    for name in ("main", "master", "origin/main", "origin/master"):
        if _resolves(repo, name):
            return name
    raise UsageError("cannot tell the base branch (no remote HEAD, main or master): "
                     "pass --base REF")


def _check_readable(repo: git.Repo) -> None:
    # git refuses a checkout owned by another user (a container's uid on a CI clone), which
    # would otherwise look like a repository without commits.
    try:
        repo.git.rev_parse("--git-dir")
    except git.GitCommandError as exc:
        if "dubious ownership" in str(exc.stderr):
            raise UsageError(f"git refuses {repo.working_dir}: it belongs to another user; run "
                             f"git config --global --add safe.directory {repo.working_dir}") \
                from None
        raise GitError(f"git failed: {str(exc.stderr).strip() or exc}") from None


def _resolves(repo: git.Repo, ref: str) -> bool:
    try:
        repo.git.rev_parse("--verify", "--quiet", f"{ref}^{{commit}}")
    except git.GitCommandError:
        return False
    return True


def _commit(repo: git.Repo, ref: str, flag: str) -> str:
    if not _resolves(repo, ref):
        raise UsageError(f"{flag} {ref!r} is not a commit in {repo.working_dir}")
    return str(repo.git.rev_parse(f"{ref}^{{commit}}"))


def read_change(path: Path, base: str | None, head: str | None) -> LocalChange:
    """The diff from the merge base of base and head to head (or the working tree)."""
    repo = open_repo(path)
    _check_readable(repo)
    if not repo.head.is_valid():
        raise UsageError(f"{repo.working_dir} has no commits yet: commit a base first")
    base_ref = base or default_base(repo)
    base_sha = _commit(repo, base_ref, "--base")
    head_sha = _commit(repo, head, "--head") if head else None
    try:
        merge_base = repo.git.merge_base(base_sha, head_sha or "HEAD")
        if head_sha:
            patch = repo.git.diff(*DIFF_OPTIONS, merge_base, head_sha)
        else:
            patch = repo.git.diff(*DIFF_OPTIONS, merge_base) + _untracked(repo)
    except git.GitCommandError as exc:
        raise GitError(f"git failed: {exc.stderr.strip() or exc}") from None
    title = (repo.commit(head_sha).summary if head_sha else "Uncommitted changes")
    return LocalChange(
        repository=str(repo.working_dir), base=base_ref, head=head or "working tree",
        base_sha=str(merge_base), head_sha=head_sha, title=str(title),
        changes=tuple(split_patch(patch + "\n")) if patch.strip() else (),
    )


def _untracked(repo: git.Repo) -> str:
    # New files the user has not added yet are part of "the working tree" too.
    parts = []
    for name in repo.untracked_files:
        out = repo.git.diff(*DIFF_OPTIONS, "--no-index", "--", "/dev/null", name,
                            with_exceptions=False)
        if out:
            parts.append(out)
    return "\n" + "\n".join(parts) if parts else ""
