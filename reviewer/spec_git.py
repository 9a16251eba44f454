"""Cloning a spec repository: safely (it is data: nothing in it runs), with the right
credential, and without a token ever reaching argv, a URL that is printed or .git/config."""

from __future__ import annotations

import base64
import re
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit, urlunsplit

from reviewer.errors import SpecError

if TYPE_CHECKING:  # GitPython is imported where a spec comes from git, not for every run
    from git import GitCommandError

COMMIT_SHA = re.compile(r"^[0-9a-f]{40}$")  # git cannot fetch an abbreviated SHA

# The spec is data: cloning it runs nothing it or a template could bring (hooks, an fsmonitor
# command, LFS smudging), and only http(s), ssh and git transports are allowed.
SAFE_GIT_CONFIG = {"core.hooksPath": "/dev/null", "core.fsmonitor": "false",
                   "protocol.allow": "never", "protocol.https.allow": "always",
                   "protocol.http.allow": "always", "protocol.ssh.allow": "always",
                   "protocol.git.allow": "always", "protocol.file.allow": "user"}


def git_config_env(settings: Mapping[str, str]) -> dict[str, str]:
    """git configuration passed through the environment (GIT_CONFIG_COUNT, git 2.31+): it
    applies to this command only and is never written to a .git/config."""
    env = {"GIT_CONFIG_COUNT": str(len(settings))}
    for n, (key, value) in enumerate(settings.items()):
        env |= {f"GIT_CONFIG_KEY_{n}": key, f"GIT_CONFIG_VALUE_{n}": value}
    return env


@dataclass(frozen=True)
class Credential:
    username: str
    password: str


def clone_credential(url: str, spec_token: str | None, job_token: str | None,
                     ci_host: str | None) -> Credential | None:
    """The credential for an https spec URL: REVIEWER_SPEC_TOKEN, else CI_JOB_TOKEN on our host."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return None
    if parts.username and parts.password:
        return Credential(unquote(parts.username), unquote(parts.password))  # as git decodes
    if spec_token:
        return Credential("oauth2", spec_token)
    if job_token and ci_host and parts.hostname == ci_host.split(":")[0].lower():
        return Credential("gitlab-ci-token", job_token)
    return None


def strip_userinfo(url: str) -> str:
    """The URL without user:password@, as it may be printed and stored."""
    parts = urlsplit(url)
    if "://" not in url or not parts.netloc or "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


@contextmanager
def cloned(url: str, ref: str | None, credential: Credential | None) -> Iterator[Path]:
    """Shallow-clone url at ref into a temporary directory, removed afterwards."""
    import git

    clean = strip_userinfo(url)
    settings = dict(SAFE_GIT_CONFIG)
    if credential:
        # An extra header through the environment: never in argv, the URL or .git/config.
        token = base64.b64encode(f"{credential.username}:{credential.password}".encode()).decode()
        settings["http.extraHeader"] = f"Authorization: Basic {token}"
    env = {"GIT_TERMINAL_PROMPT": "0", "GIT_LFS_SKIP_SMUDGE": "1", **git_config_env(settings)}
    with tempfile.TemporaryDirectory(prefix="reviewer-spec-") as tmp:
        target = Path(tmp) / "spec"
        try:
            if ref and COMMIT_SHA.match(ref):
                # --branch takes only branch and tag names; a commit is fetched by itself.
                repo = git.Repo.init(target)
                repo.git.fetch("--depth", "1", clean, ref, env=env)
                repo.git.checkout("--quiet", "FETCH_HEAD")
            else:
                options = ["--branch", ref] if ref else []
                git.Repo.clone_from(clean, target, env=env, multi_options=["--depth=1", *options])
        except git.GitCommandError as exc:
            raise SpecError(_clone_message(clean, ref, exc, credential)) from None
        yield target


def _clone_message(url: str, ref: str | None, exc: GitCommandError,
                   credential: Credential | None) -> str:
    # GitPython prefixes git's first stderr line with "stderr: '" (a fetch fails on it).
    lines = [ln.strip().removeprefix("stderr: '") for ln in str(exc.stderr).splitlines()
             if ln.strip()]
    detail = next((ln for ln in reversed(lines) if ln.startswith(("fatal:", "remote:"))), "")
    detail = detail.replace("stderr: ", "").strip("' ")
    at = f" at ref {ref!r}" if ref else ""
    hint = ("check the URL and --spec-ref" if credential else
            "check the URL; for a private repository set REVIEWER_SPEC_TOKEN, or in CI allow "
            "this project in the spec project's job token allowlist")
    if credential and ("could not read Username" in detail or "Authentication failed" in detail):
        # We sent a credential and the server answered 401 anyway: say which one it refused.
        sent = {"oauth2": "REVIEWER_SPEC_TOKEN", "gitlab-ci-token": "CI_JOB_TOKEN (check the "
                "spec project's job token allowlist)"}.get(credential.username,
                                                            "the user and password in the URL")
        hint = f"the server refused {sent}"
    return f"cannot clone spec {url}{at}: {detail or 'git clone failed'} ({hint})"


def commit_of(root: Path) -> str | None:
    """The commit checked out at root (or a folder inside a checkout); None outside git."""
    import git  # GitPython only where a spec is read from git

    try:
        return str(git.Repo(root, search_parent_directories=True).head.commit.hexsha)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError, ValueError):
        return None
