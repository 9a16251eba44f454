"""Bytes that are not clean UTF-8, at every entrance: git's diff, file names, commit titles,
rule files. Each is read (legacy bytes as Windows-1252/Latin-1 characters, a byte-order mark
dropped, CRLF as line ends) or skipped with a reason; never a crash.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from reviewer.model import Review
from tests.conftest import answer, clean_env, run_cli
from tests.openai_standin import FakeOpenAI

LATIN1_NAME = b"J\xfcrgen.py"
# path: (bytes in the change, what the reviewer must read)
FILES: dict[bytes, bytes] = {
    b"latin1.py": b'name = "J\xfcrgen"\n',
    b"cp1252.py": b"# \x93quoted\x94 \x80 5\n",
    LATIN1_NAME: b"x = 1\n",
    b"bom.py": b"\xef\xbb\xbfimport os\n",
    b"crlf.py": b"a = 1\r\nb = 2\r\n",
    b"utf16.txt": "hello = 1\n".encode("utf-16"),  # git: binary (NUL bytes)
}
READ_AS = ['name = "Jürgen"', "# “quoted” € 5", "import os", "a = 1", "b = 2"]
REVIEWED = ["Jürgen.py", "bom.py", "cp1252.py", "crlf.py", "latin1.py"]
LATIN1_RULE = (b"---\nid: ENC-003\ntitle: R\xe8gle pour J\xfcrgen\nseverity: minor\n---\n"
               b"\xc9viter les caract\xe8res \x93sp\xe9ciaux\x94.\n")


def git(repo: Path, *args: str | bytes) -> str:
    env = clean_env(GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.com",
                    GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.com",
                    GIT_CONFIG_NOSYSTEM="1", HOME=str(repo.parent))
    return subprocess.run(["git", *args], cwd=repo, env=env, check=True,
                          capture_output=True).stdout.decode("utf-8", "replace").strip()


def put(repo: Path, files: dict[bytes, bytes]) -> None:
    for name, data in files.items():
        (repo / os.fsdecode(name)).write_bytes(data)


def base_repo(path: Path) -> Path:
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    put(path, {b"app.py": b"x = 0\n"})
    git(path, "add", "-A")
    git(path, "commit", "-qm", "base")
    return path


def run_review(repo: Path, llm: FakeOpenAI, *args: str) -> Review:
    llm.responder = lambda body: answer()
    out = repo.parent / "review.json"
    result = run_cli("review", "--local", "--base", "main", "--base-url", llm.url, "--model", "m",
                     "-o", str(out), *args, cwd=repo)
    assert result.code == 0, result.stderr
    assert "Traceback" not in result.stderr
    return Review.model_validate_json(out.read_text(encoding="utf-8"))


def sent(llm: FakeOpenAI) -> str:
    return "\n".join(m["content"] for r in llm.requests for m in r["messages"])


def rule_dir(root: Path) -> Path:
    """A spec whose rule files were saved by every kind of editor."""
    root.mkdir()
    rules = {
        b"bom.md": b"\xef\xbb\xbf---\nid: ENC-001\ntitle: With a BOM\nseverity: major\n---\n"
                   b"Text one.\n",
        b"crlf.md": b"---\r\nid: ENC-002\r\ntitle: Windows line ends\r\nseverity: info\r\n"
                    b"---\r\nText two.\r\n\r\nMore.\r\n",
        b"r\xe8gle.md": LATIN1_RULE,  # Latin-1 text and a Latin-1 file name
        b"utf16.md": ("---\nid: ENC-004\ntitle: Notepad Unicode\nseverity: minor\n---\n"
                      "Text four.\n").encode("utf-16"),
        b"cr.md": b"---\rid: ENC-005\rtitle: Old Mac\rseverity: minor\r---\rText five.\r",
    }
    for name, data in rules.items():
        (root / os.fsdecode(name)).write_bytes(data)
    return root


# --- git: a committed range and the working tree -------------------------------------------

def test_a_committed_range_with_legacy_bytes_names_bom_crlf_and_utf16_is_reviewed(
        tmp_path: Path, llm: FakeOpenAI) -> None:
    repo = base_repo(tmp_path / "repo")
    git(repo, "checkout", "-qb", "feature")
    put(repo, FILES)
    git(repo, "add", "-A")
    (tmp_path / "message").write_bytes(b"Fix f\xfcr J\xfcrgen\n\nLatin-1, no encoding header.\n")
    git(repo, "commit", "-q", "-F", str(tmp_path / "message"))

    review = run_review(repo, llm, "--head", "feature", "--spec", str(rule_dir(tmp_path / "spec")))

    assert sorted(review.files_reviewed) == REVIEWED
    assert {s.path: s.reason for s in review.skipped_files} == {"utf16.txt": "binary file"}
    prompt = sent(llm)
    assert all(text in prompt for text in READ_AS)
    assert "Title: Fix für Jürgen" in prompt
    assert "Éviter les caractères “spéciaux”." in prompt  # the Latin-1 rule's body
    assert "\r" not in prompt


def test_the_working_tree_with_legacy_bytes_in_tracked_and_untracked_files_is_reviewed(
        tmp_path: Path, llm: FakeOpenAI) -> None:
    repo = base_repo(tmp_path / "repo")
    tracked = {b"latin1.py": b"x\n", b"crlf.py": b"a = 0\r\n", b"utf16.txt": b"x\n"}
    put(repo, tracked)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "tracked")
    put(repo, FILES)  # the tracked ones change, the others are new and untracked

    review = run_review(repo, llm)

    assert sorted(review.files_reviewed) == REVIEWED
    assert {s.path: s.reason for s in review.skipped_files} == {"utf16.txt": "binary file"}
    assert all(text in sent(llm) for text in READ_AS)


def test_an_untracked_utf16_file_is_skipped_as_binary(tmp_path: Path, llm: FakeOpenAI) -> None:
    repo = base_repo(tmp_path / "repo")
    put(repo, {b"notes.txt": "hello\n".encode("utf-16")})

    review = run_review(repo, llm)

    assert {s.path: s.reason for s in review.skipped_files} == {"notes.txt": "binary file"}
    assert llm.requests == []


# --- rule files ------------------------------------------------------------------------------

def test_spec_check_reads_rule_files_with_bom_crlf_cr_latin1_and_utf16(tmp_path: Path) -> None:
    result = run_cli("spec", "check", str(rule_dir(tmp_path / "spec")), "--json")

    assert result.code == 0, result.stderr
    rules = {r["id"]: (r["title"], r["file"]) for r in json.loads(result.stdout)}
    assert rules == {
        "ENC-001": ("With a BOM", "bom.md"),
        "ENC-002": ("Windows line ends", "crlf.md"),
        "ENC-003": ("Règle pour Jürgen", "règle.md"),
        "ENC-004": ("Notepad Unicode", "utf16.md"),
        "ENC-005": ("Old Mac", "cr.md"),
    }


@pytest.mark.parametrize("data", [
    b"\xef\xbb\xbf---\nid: X-001\n---\nText.\n",
    b"---\r\nid: X-001\r\ntitle: t\r\n",
], ids=["bom", "crlf"])
def test_a_broken_rule_file_with_bom_or_crlf_still_gets_its_real_error(tmp_path: Path,
                                                                        data: bytes) -> None:
    (tmp_path / "a.md").write_bytes(data)

    result = run_cli("spec", "check", str(tmp_path))

    assert result.code == 1
    assert result.stderr.count("\n") == 1 and "must start with a '---'" not in result.stderr
