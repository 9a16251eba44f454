"""Offline mode: the change is a range of a local git repository, read with GitPython.

git's output is read as bytes and decoded by text.decode, file by file: code, names and commit
titles need not be UTF-8. Names come from git's own headers (gitpatch.py) and, for untracked
files, from `git ls-files -z`: exact for any name.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import git

from reviewer.diff import Change, split_patch
from reviewer.errors import GitError, UsageError
from reviewer.text import clean, decode

# Fixed options so a user's git config (noprefix, external diff tools, textconv, colour, copy
# detection, diff.submodule=log, diff.relative) cannot change what we parse.
DIFF_OPTIONS = ("--no-color", "--no-ext-diff", "--no-textconv", "-M", "-U3", "--src-prefix=a/",
                "--dst-prefix=b/", "--submodule=short", "--ignore-submodules=dirty",
                "--no-relative")
# The same for settings that have no command-line option (git -c).
GIT_CONFIG = ("core.quotePath=true", "diff.suppressBlankEmpty=false", "diff.noprefix=false",
              "diff.mnemonicPrefix=false", "log.showSignature=false")


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
    """The git repository at or above path; UsageError outside one."""
    if not path.exists():
        raise UsageError(f"--repo {path} does not exist")
    try:
        return git.Repo(path, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise UsageError(f"--local needs a git repository; {path.resolve()} is not in one") \
            from None


def default_base(repo: git.Repo) -> str:
    """The remote's default branch, else main or master; UsageError when there is none."""
    for remote in repo.remotes:
        try:
            ref = repo.git.symbolic_ref(f"refs/remotes/{remote.name}/HEAD", "--short")
        except git.GitCommandError:
            continue
        if ref:
            return clean(str(ref))
    for name in ("main", "master", "origin/main", "origin/master"):
        if _resolves(repo, name):
            return name
    raise UsageError("cannot tell the base branch (no remote HEAD, main or master): "
                     "pass --base REF")


def read_change(path: Path, base: str | None, head: str | None) -> LocalChange:
    """The diff from the merge base of base and head to head (or the working tree).

    Raises UsageError for what the user can fix with flags (not a repository, no commits, an
    unknown ref, a bare repository without --head, a checkout git refuses) and GitError when
    git cannot produce the diff (no common ancestor, e.g. in a shallow CI clone).
    """
    repo = open_repo(path)
    _check_readable(repo)
    if repo.bare and not head:
        raise UsageError("a bare repository has no working tree: pass --head")
    if not repo.head.is_valid():
        raise UsageError(f"{repo.working_dir} has no commits yet: commit a base first")
    base_ref = base or default_base(repo)
    base_sha = _commit(repo, base_ref, "--base")
    head_sha = _commit(repo, head, "--head") if head else None
    merge_base = _merge_base(repo, base_ref, base_sha, head or "HEAD", head_sha)
    if head_sha:
        changes = split_patch(_git(repo, "diff", *DIFF_OPTIONS, merge_base, head_sha, "--"))
    else:
        changes = [*split_patch(_git(repo, "diff", *DIFF_OPTIONS, merge_base, "--")),
                   *_untracked(repo)]
    return LocalChange(
        repository=clean(str(repo.working_dir)), base=base_ref, head=head or "working tree",
        base_sha=merge_base, head_sha=head_sha,
        title=_title(repo, head_sha) if head_sha else "Uncommitted changes",
        changes=tuple(changes),
    )


def _git(repo: git.Repo, *args: str) -> bytes:
    """git's stdout as bytes, run with GIT_CONFIG; GitError with git's message on failure."""
    status, out, err = _run(repo, *args)
    if status != 0:
        raise GitError(f"git {args[0]} failed: {_first_line(err) or f'exit status {status}'}")
    return out


def _run(repo: git.Repo, *args: str) -> tuple[int, bytes, str]:
    config = [item for setting in GIT_CONFIG for item in ("-c", setting)]
    return repo.git.execute([repo.git.GIT_PYTHON_GIT_EXECUTABLE or "git", *config, *args],
                            with_extended_output=True, with_exceptions=False,
                            stdout_as_string=False, strip_newline_in_stdout=False)


def _first_line(stderr: str) -> str:
    return clean(next((ln.strip() for ln in stderr.splitlines() if ln.strip()), ""))


def _check_readable(repo: git.Repo) -> None:
    # git refuses a checkout owned by another user (a container's uid on a CI clone), which
    # would otherwise look like a repository without commits.
    status, _, err = _run(repo, "rev-parse", "--git-dir")
    if status == 0:
        return
    if "dubious ownership" in err:
        raise UsageError(f"git refuses {repo.working_dir}: it belongs to another user; run "
                         f"git config --global --add safe.directory {repo.working_dir}")
    raise GitError(f"git failed: {_first_line(err) or f'exit status {status}'}")


def _resolves(repo: git.Repo, ref: str) -> bool:
    return _run(repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")[0] == 0


def _commit(repo: git.Repo, ref: str, flag: str) -> str:
    if not _resolves(repo, ref):
        # A CI clone fetches its own branch only, and only so deep.
        hint = (": this clone is shallow and may not have it (git fetch origin <branch>, or "
                "GIT_DEPTH: 0 in the CI job)" if _is_shallow(repo) else "")
        raise UsageError(f"{flag} {ref!r} is not a commit in {repo.working_dir}{hint}")
    return _git(repo, "rev-parse", f"{ref}^{{commit}}").decode("ascii").strip()


def _is_shallow(repo: git.Repo) -> bool:
    status, out, _ = _run(repo, "rev-parse", "--is-shallow-repository")
    return status == 0 and out.strip() == b"true"


def _merge_base(repo: git.Repo, base: str, base_sha: str, head: str, head_sha: str | None) -> str:
    """Where head left base; GitError naming the fix when the history does not show it."""
    status, out, err = _run(repo, "merge-base", base_sha, head_sha or "HEAD")
    if status == 0:
        return out.decode("ascii").strip()
    if status != 1 or err.strip():  # git exits 1, silently, for "no common ancestor"
        raise GitError(f"git merge-base failed: {_first_line(err) or f'exit status {status}'}")
    if _is_shallow(repo):
        raise GitError(f"{base} and {head} have no common ancestor in this shallow clone: fetch "
                       "the whole history (GIT_DEPTH: 0 in the CI job, or git fetch "
                       "--unshallow), or pass --base a commit that exists here")
    raise GitError(f"{base} and {head} have no common ancestor (unrelated histories): pass "
                   "--base a commit that the change grew from")


def _title(repo: git.Repo, sha: str) -> str:
    # %s is the subject, re-encoded by git to UTF-8 when the commit names its encoding.
    return decode(_git(repo, "log", "-1", "--format=%s", sha, "--")).strip()


def _untracked(repo: git.Repo) -> list[Change]:
    """New files the user has not added yet: they are part of "the working tree" too."""
    listed = _git(repo, "ls-files", "-z", "--others", "--exclude-standard")
    return [_untracked_change(repo, name) for name in listed.split(b"\0") if name]


def _untracked_change(repo: git.Repo, name: bytes) -> Change:
    path = decode(name.rstrip(b"/"))
    where = Path(str(repo.working_dir)) / os.fsdecode(name.rstrip(b"/"))
    if name.endswith(b"/"):  # git lists a nested repository as a directory
        sha = _nested_head(where)
        body = f"@@ -0,0 +1 @@\n+Subproject commit {sha}\n" if sha else ""
        return Change(path, path, body, new_file=True, new_mode="160000")
    if where.is_symlink():
        # git diff --no-index follows a link to a directory; the link itself is the change.
        target = decode(os.fsencode(where.readlink()))
        body = f"@@ -0,0 +1 @@\n+{target}\n\\ No newline at end of file\n"
        return Change(path, path, body, new_file=True, new_mode="120000")
    status, out, err = _run(repo, "diff", *DIFF_OPTIONS, "--no-index", "--", "/dev/null",
                            os.fsdecode(name))
    changes = split_patch(out) if out else []
    if not changes:  # exit status 1 means "differs", and also "could not read"
        raise GitError(f"cannot read untracked file {path}: "
                       f"{_first_line(err) or f'git diff exit status {status}'}")
    return Change(path, path, changes[0].diff, new_file=True, new_mode=changes[0].new_mode)


def _nested_head(path: Path) -> str | None:
    try:
        return str(git.Repo(path).head.commit.hexsha)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError, ValueError):
        return None
