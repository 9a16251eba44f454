"""The secrets canary: a change carrying every kind of secret, reviewed through the real CLI.

The model stand-in records every request; no canary may be in any of them, nor in what the run
prints, writes or posts, and each secret the change adds is a critical finding on its line.
The run's own credentials (tokens, API keys, passwords in URLs) stay out of everything printed
too, also at --verbose and when a library raises with a URL in its message.
"""

from __future__ import annotations

import json
import socket
import subprocess
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from reviewer.model import Review
from tests.conftest import API_KEY, TOKEN, answer, clean_env, run_cli
from tests.gitlab_standin import FakeGitLab
from tests.openai_standin import FakeOpenAI
from tests.test_secrets_samples import Sample, key_block, pem_body, rnd, samples

APPROVE = answer(score=97, verdict="approve", summary="Clean configuration change.")


@dataclass(frozen=True)
class Placed:
    """A sample written into a file: where its finding must be."""

    sample: Sample
    path: str
    line: int
    end_line: int | None


def layout(items: list[Sample]) -> tuple[dict[str, list[str]], list[Placed]]:
    """Files holding the samples (a few ordinary lines around each), and where each landed."""
    files: dict[str, list[str]] = defaultdict(lambda: ["# settings", ""])
    placed = []
    for sample in items:
        lines = files[sample.path]
        first, last = (len(lines) + 1 + i for i in sample.span)
        placed.append(Placed(sample, sample.path, first, last if last != first else None))
        lines += [*sample.lines, ""]
    return dict(files), placed


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
                          cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


def write(repo: Path, files: dict[str, list[str]]) -> None:
    for name, lines in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text("\n".join(lines) + "\n")


def sent(llm: FakeOpenAI) -> str:
    return "\n".join(json.dumps(r) for r in llm.requests)


def leaked(canaries: list[str], *texts: str) -> list[str]:
    return [c for c in canaries if any(c in t for t in texts)]


@dataclass
class LocalChange:
    repo: Path
    placed: list[Placed]
    canaries: list[str]  # everything secret in the change: added, removed, context, message


@pytest.fixture
def local_change(tmp_path: Path) -> LocalChange:
    """A repository whose last commit adds one secret of each kind, removes one, keeps one as
    context of a changed line, and names one in its commit message."""
    repo = tmp_path / "shop"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    kept, removed = "AKIA" + rnd(16, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"), "glpat-" + rnd(20)
    legacy = {"legacy.py": ["import os", f'LEGACY_KEY = "{kept}"', "RETRIES = 3",
                            f'OLD_TOKEN = "{removed}"', "TIMEOUT = 5"]}
    write(repo, legacy)
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "Legacy settings")
    items = samples()
    files, placed = layout(items)
    legacy["legacy.py"][2:4] = ["RETRIES = 4"]
    write(repo, files | legacy)
    git(repo, "add", ".")
    in_message = "ghp_" + rnd(36)
    git(repo, "commit", "-qm", f"Deploy settings (temporary token {in_message})")
    canaries = [c for s in items for c in s.canaries] + [kept, removed, in_message]
    return LocalChange(repo, placed, canaries)


def review_local(change: LocalChange, llm: FakeOpenAI, *args: str) -> tuple[Any, Review]:
    out = change.repo.parent / "review.json"
    result = run_cli("review", "--local", "--repo", str(change.repo), "--base", "main~1",
                     "--head", "main", "--base-url", llm.url, "--model", "m", "--output",
                     str(out), *args)
    assert out.exists(), result.stderr
    return result, Review.model_validate_json(out.read_text())


def test_no_canary_reaches_the_model_and_each_added_one_is_a_finding(
        local_change: LocalChange, llm: FakeOpenAI) -> None:
    llm.queue(APPROVE)
    result, review = review_local(local_change, llm, "--verbose")

    assert result.code == 0, result.stderr
    assert llm.requests, "nothing was sent: the canary proves nothing"
    assert leaked(local_change.canaries, sent(llm)) == []
    for kind in {p.sample.kind for p in local_change.placed}:
        assert f"<redacted:{kind}>" in sent(llm)  # the files were sent, redacted
    found = {(f.path, f.line, f.end_line): f for f in review.findings}
    for p in local_change.placed:
        finding = found.get((p.path, p.line, p.end_line))
        assert finding, f"no finding for {p.sample.kind} at {p.path}:{p.line}"
        assert (finding.severity, finding.rule, finding.placed) == ("critical", "SEC-002", True)
    assert not [f for f in review.findings if f.path == "legacy.py"]  # kept or removed: no
    assert review.verdict == "request_changes"  # whatever the model said
    assert review.score is not None and review.score < 50
    out = (local_change.repo.parent / "review.json").read_text()
    assert leaked(local_change.canaries, out, result.stdout, result.stderr) == []


def test_with_no_redact_the_canaries_are_sent_as_they_are(
        local_change: LocalChange, llm: FakeOpenAI) -> None:
    """The protection switched off: the canaries do reach the model, so the test above would
    catch a redaction that stopped working."""
    llm.queue(APPROVE)
    result, review = review_local(local_change, llm, "--no-redact")

    assert result.code == 0, result.stderr
    added = [c for p in local_change.placed for c in p.sample.canaries]
    assert leaked(added, sent(llm)) == added
    assert not [f for f in review.findings if f.rule == "SEC-002"]


def test_merge_request_title_description_diff_and_notes_carry_no_canary(
        gitlab: FakeGitLab, llm: FakeOpenAI, tmp_path: Path) -> None:
    items = [*samples()[:4], key_block()]
    files, placed = layout(items)
    in_title, body = "glpat-" + rnd(20), pem_body(3)
    description = "\n".join(["Deploy with this key:", "-----BEGIN PRIVATE KEY-----", *body,
                             "-----END PRIVATE KEY-----", f"password: {rnd(12)}Aa1"])
    canaries = [c for s in items for c in s.canaries] + [in_title, *body,
                                                         description.split(": ")[-1]]
    gitlab.add_user("reviewer-bot", TOKEN)
    project = gitlab.add_project("group/shop")
    diffs = [{"old_path": p, "new_path": p, "new_file": True,
              "diff": f"@@ -0,0 +1,{len(lines)} @@\n" + "".join(f"+{ln}\n" for ln in lines)}
             for p, lines in files.items()]
    gitlab.add_merge_request(project["id"], iid=3, title=f"Deploy ({in_title})",
                             description=description, files=diffs)
    llm.queue(APPROVE)
    out = tmp_path / "review.json"
    env = clean_env(REVIEWER_GITLAB_URL=gitlab.url, REVIEWER_GITLAB_TOKEN=TOKEN,
                    REVIEWER_PROJECT=str(project["id"]), REVIEWER_MR_IID="3",
                    REVIEWER_BASE_URL=llm.url, REVIEWER_MODEL="m", REVIEWER_API_KEY=API_KEY,
                    REVIEWER_OUTPUT=str(out))
    result = run_cli("review", "--verbose", env=env)

    assert result.code == 0, result.stderr
    notes = [n["body"] for n in gitlab.notes(project["id"], 3)]
    assert leaked(canaries, sent(llm), out.read_text(), result.stdout, result.stderr,
                  *notes) == []
    review = Review.model_validate_json(out.read_text())
    assert {(p.path, p.line) for p in placed} <= {(f.path, f.line) for f in review.findings}
    assert review.verdict == "request_changes"


# --- the run's own credentials ---------------------------------------------------------------

URL_PASSWORD = "UrlPassw0rd-" + "Zq7"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def credentials_absent(*texts: str) -> list[str]:
    return [s for s in (TOKEN, API_KEY, URL_PASSWORD) if any(s in t for t in texts)]


def test_credentials_in_urls_and_flags_stay_out_of_output_at_verbose(
        gitlab: FakeGitLab, llm: FakeOpenAI, tmp_path: Path) -> None:
    gitlab.add_user("reviewer-bot", TOKEN)
    project = gitlab.add_project("group/shop")
    gitlab.add_merge_request(project["id"], iid=4, title="Small change", files=[
        {"old_path": "a.py", "new_path": "a.py", "diff": "@@ -1 +1 @@\n-x = 1\n+x = 2\n"}])
    llm.queue(APPROVE)
    out = tmp_path / "review.json"
    with_password = llm.url.replace("http://", f"http://model:{URL_PASSWORD}@")
    result = run_cli("review", "--verbose", "--gitlab-url", gitlab.url, "--token", TOKEN,
                     "--project", str(project["id"]), "--mr", "4", "--base-url", with_password,
                     "--api-key", API_KEY, "--model", "m", "--output", str(out))

    assert result.code == 0, result.stderr
    notes = [n["body"] for n in gitlab.notes(project["id"], 4)]
    assert credentials_absent(result.stdout, result.stderr, out.read_text(), *notes) == []


@pytest.mark.parametrize("where", ["gitlab", "model"])
def test_a_library_error_naming_a_url_with_credentials_prints_none(tmp_path: Path,
                                                                    where: str) -> None:
    """Nothing listens: the HTTP library's error names the URL; at --verbose the traceback is
    printed too. Neither may show the password in the URL, the token or the key."""
    dead = f"http://bot:{URL_PASSWORD}@127.0.0.1:{closed_port()}"
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "a.py").write_text("x = 1\n")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "base")
    (repo / "a.py").write_text("x = 2\n")
    args = (["--gitlab-url", dead, "--project", "1", "--mr", "1"] if where == "gitlab" else
            ["--local", "--repo", str(repo), "--base-url", f"{dead}/v1"])
    result = run_cli("review", "--verbose", *args, "--token", TOKEN, "--api-key", API_KEY,
                     "--model", "m", "--output", str(tmp_path / "review.json"), "--retries", "0",
                     "--timeout", "5", timeout=60)

    assert result.code == 1
    assert "127.0.0.1" in result.stderr  # the error does say where it tried
    assert credentials_absent(result.stdout, result.stderr) == []
