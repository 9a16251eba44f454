"""The review rules: the bundled spec, the rule format, its errors, and specs cloned over HTTP.

Specs in git are served by the real ``git http-backend`` behind HTTP Basic auth
(tests/git_http_standin.py) and cloned by the real git client, in process through
``reviewer.spec`` and in a subprocess through the real CLI.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest

from reviewer import spec, spec_git
from reviewer.config import load_settings
from reviewer.errors import SpecError
from reviewer.model import SEVERITIES
from reviewer.spec import from_settings as load_spec
from tests.conftest import Result, answer, clean_env, run_cli
from tests.git_http_standin import GitHTTP
from tests.openai_standin import FakeOpenAI

SPEC_TOKEN = "glpat-SpecReadToken777"
JOB_TOKEN = "ci-JobToken-5e3b9a41"
URL_USER, URL_PASSWORD = "reader", "Url-Passw0rd-4711"
ODD_USER, ODD_PASSWORD = "odd", "p@ss:w/rd%41"  # needs percent-encoding inside a URL
ACCOUNTS = {"oauth2": SPEC_TOKEN, "gitlab-ci-token": JOB_TOKEN, URL_USER: URL_PASSWORD,
            ODD_USER: ODD_PASSWORD}
ROOT = Path(__file__).resolve().parent.parent


# --- helpers -------------------------------------------------------------------------------

def rule(rule_id: str, *, title: str = "A rule", severity: str = "major",
         paths: str | None = None, body: str | None = None) -> str:
    """One rule as a team writes it: front matter, then text."""
    header = f"id: {rule_id}\ntitle: {title}\nseverity: {severity}\n"
    if paths is not None:
        header += f"paths: {paths}\n"
    return f"---\n{header}---\n{body or f'Text of {rule_id}.'}\n"


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    return root


def git(cwd: Path, *args: str) -> str:
    """Run the real git with a fixed identity and nothing from the caller's GIT_* variables."""
    env = clean_env(GIT_AUTHOR_NAME="Test", GIT_AUTHOR_EMAIL="test@example.com",
                    GIT_COMMITTER_NAME="Test", GIT_COMMITTER_EMAIL="test@example.com")
    proc = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          check=True)
    return proc.stdout.strip()


def commit(repo: Path, files: dict[str, str], message: str) -> str:
    write(repo, files)
    git(repo, "add", "-A")
    git(repo, "commit", "--quiet", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def one_error_line(result: Result) -> str:
    """The single `reviewer: error:` line a failed run must print, and nothing else."""
    assert result.code == 1, (result.code, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and result.stderr.endswith("\n"), result.stderr
    assert lines[0].startswith("reviewer: error: "), result.stderr
    return lines[0]


def ids_of(result: Result) -> list[str]:
    """The rule ids `reviewer spec check --json` printed."""
    assert result.code == 0, (result.stdout, result.stderr)
    return [r["id"] for r in json.loads(result.stdout)]


def git_dir_leaks(checkout: Path, secret: str, username: str) -> list[str]:
    """Files under checkout/.git holding the secret, raw or as a Basic-auth header value."""
    header = base64.b64encode(f"{username}:{secret}".encode())
    return [str(p) for p in (checkout / ".git").rglob("*") if p.is_file()
            and (secret.encode() in p.read_bytes() or header in p.read_bytes())]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Served:
    server: GitHTTP
    url: str  # http://127.0.0.1:PORT/spec.git, without credentials
    commits: dict[str, str]  # c1..c4 -> sha

    def with_userinfo(self, user: str, password: str) -> str:
        return self.url.replace("http://", f"http://{quote(user, safe='')}:"
                                f"{quote(password, safe='')}@")


# Refs of the served spec and the rules each one holds.
#   c1 ALP-001 (tag v1.0) -- c2 +ALP-002 -- c3 +ALP-003 (main)
#     \-- c4 +LEG-001 (branch legacy)
AT_MAIN = ["ALP-001", "ALP-002", "ALP-003"]
AT_LEGACY = ["ALP-001", "LEG-001"]
AT_TAG = ["ALP-001"]
AT_C2 = ["ALP-001", "ALP-002"]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    source = tmp_path / "spec-source"
    source.mkdir()
    git(source, "init", "--quiet", "-b", "main")
    c1 = commit(source, {"README.md": "Not a rule: documentation.\n",
                         "alpha/ALP-001.md": rule("ALP-001")}, "first rule")
    git(source, "tag", "-a", "v1.0", "-m", "release 1.0")
    c2 = commit(source, {"alpha/ALP-002.md": rule("ALP-002")}, "second rule")
    c3 = commit(source, {"alpha/ALP-003.md": rule("ALP-003")}, "third rule")
    git(source, "checkout", "--quiet", "-b", "legacy", c1)
    c4 = commit(source, {"legacy/LEG-001.md": rule("LEG-001")}, "legacy rule")
    git(source, "checkout", "--quiet", "main")
    with GitHTTP(tmp_path / "served", ACCOUNTS) as server:
        url = server.publish(source)
        yield Served(server, url, {"c1": c1, "c2": c2, "c3": c3, "c4": c4})


@pytest.fixture
def plain_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """This process's environment without settings a developer or CI job may have set."""
    for name in list(os.environ):
        if name.startswith(("REVIEWER_", "CI_", "GIT_")):
            monkeypatch.delenv(name)


# --- the bundled spec ----------------------------------------------------------------------

def test_bundled_spec_has_8_to_15_rules_with_unique_ids_and_valid_severities(
        plain_env: None) -> None:
    loaded = load_spec(load_settings({}))

    ids = [r.id for r in loaded.rules]
    assert loaded.source == "bundled"
    assert 8 <= len(ids) <= 15
    assert len(set(ids)) == len(ids)
    assert all(r.severity in SEVERITIES for r in loaded.rules)
    assert all(r.body and r.title for r in loaded.rules)
    # The README says each file is named <id>-<short-name>.md.
    assert all(Path(r.file).name.startswith(f"{r.id}-") for r in loaded.rules)


def test_the_bundled_spec_takes_no_commit_from_the_checkout_it_sits_in(plain_env: None) -> None:
    """Installed in a virtualenv inside the reviewed project (or, here, in this repository's
    own checkout), the bundled rules must not take that checkout's head as their commit: it
    changes on every push, and an incremental review would start over each time."""
    if spec.commit_of(spec.bundled_dir()) is None:
        pytest.skip("the bundled rules are not inside a git checkout here")
    assert load_spec(load_settings({})).commit is None


def test_spec_check_without_argument_lists_every_bundled_rule_id() -> None:
    bundled = spec.load_dir(ROOT / "spec", "bundled")

    result = run_cli("spec", "check")

    assert result.code == 0, result.stderr
    assert f"{len(bundled.rules)} rules in bundled" in result.stdout
    for r in bundled.rules:
        assert r.id in result.stdout


# --- the rule format -----------------------------------------------------------------------

def test_rule_file_with_several_front_matter_sections_loads_every_rule(tmp_path: Path) -> None:
    write(tmp_path, {"team/db.md": rule("DB-001", title="First", severity="info")
                     + rule("DB-002", title="Second", severity="blocker", paths='"*.sql"')
                     + rule("DB-003", title="Third", body="Line one.\n\n***\n\nLine two.")})

    loaded = spec.load_dir(tmp_path, str(tmp_path))

    assert [(r.id, r.title, r.severity, r.line) for r in loaded.rules] == [
        ("DB-001", "First", "info", 1), ("DB-002", "Second", "blocker", 7),
        ("DB-003", "Third", "major", 14)]
    assert {r.file for r in loaded.rules} == {"team/db.md"}
    assert loaded.rules[0].body == "Text of DB-001."  # not the next rule's header
    assert loaded.rules[1].paths == ("*.sql",)  # one pattern as a plain string
    assert loaded.rules[2].body == "Line one.\n\n***\n\nLine two."
    assert loaded.rules[0].paths == ("**",)  # no paths: every file


@pytest.mark.parametrize(("path", "expected"), [
    ("src/a.py", ["ANY-001", "PY-001"]),
    ("a.py", ["ANY-001", "PY-001"]),
    ("src/a.pyc", ["ANY-001"]),
    ("src/db/q.sql", ["ANY-001", "SQL-001"]),
    ("src/db/deep/q.sql", ["ANY-001", "SQL-001"]),
    ("src/q.sql", ["ANY-001", "SQL-001"]),
    ("lib/src/q.sql", ["ANY-001"]),  # a pattern with a slash starts at the top
    ("q.sql", ["ANY-001"]),
    ("docs/a.md", ["ANY-001", "DOC-001"]),
    ("src/docs/a.md", ["ANY-001"]),
])
def test_paths_globs_select_rules_per_file_gitignore_style(tmp_path: Path, path: str,
                                                            expected: list[str]) -> None:
    write(tmp_path, {"rules.md": rule("ANY-001") + rule("PY-001", paths='["*.py"]')
                     + rule("SQL-001", paths='["src/**/*.sql"]')
                     + rule("DOC-001", paths='["docs/*.md"]')})
    loaded = spec.load_dir(tmp_path, str(tmp_path))

    assert [r.id for r in loaded.rules_for([path])] == expected


def test_rules_for_several_paths_keeps_spec_order_and_no_paths_selects_nothing(
        tmp_path: Path) -> None:
    write(tmp_path, {"rules.md": rule("PY-001", paths='["*.py"]')
                     + rule("SQL-001", paths='["src/**/*.sql"]')})
    loaded = spec.load_dir(tmp_path, str(tmp_path))

    assert [r.id for r in loaded.rules_for(["src/x/q.sql", "b.py"])] == ["PY-001", "SQL-001"]
    assert loaded.rules_for([]) == ()


def test_parse_rules_accepts_a_byte_order_mark_and_crlf_line_ends_in_text() -> None:
    text = "\ufeff" + rule("WIN-001", body="Line one.\n\nLine two.").replace("\n", "\r\n")

    [parsed] = spec.parse_rules(text, "win.md")

    assert (parsed.id, parsed.title, parsed.body) == ("WIN-001", "A rule", "Line one.\n\nLine two.")


# --- errors: file and line, one line, exit 1 ------------------------------------------------

HEADER_OK = "---\nid: ABC-001\ntitle: t\nseverity: major\n---\nText.\n"

ERROR_CASES = {
    "missing start": ({"a.md": "id: ABC-001\n---\nText.\n"},
                      "a.md:1: a rule file must start with a '---' front-matter line"),
    "unclosed front matter": ({"a.md": HEADER_OK + "---\nid: ABC-002\ntitle: t\n"},
                              "a.md:7: front matter opened here is never closed"),
    "invalid yaml in the second rule": (
        {"a.md": HEADER_OK + "---\nid: ABC-002\ntitle: a: b\nseverity: major\n---\nText.\n"},
        "a.md:9: invalid YAML front matter: mapping values are not allowed here"),
    "unknown key": ({"a.md": "---\nid: ABC-001\ntitle: t\nseverty: major\n---\nText.\n"},
                    "a.md:4: severty: Extra inputs are not permitted"),
    "bad severity": ({"a.md": "---\nid: ABC-001\ntitle: t\nseverity: urgent\n---\nText.\n"},
                     "a.md:4: severity: Input should be 'info', 'minor', 'major', 'critical' "
                     "or 'blocker'"),
    "bad id": ({"a.md": "---\nid: abc-1\ntitle: t\nseverity: major\n---\nText.\n"},
               "a.md:2: id: String should match pattern"),
    "duplicate id across files": (
        {"a/one.md": HEADER_OK, "b/two.md": rule("XYZ-001") + HEADER_OK},
        "b/two.md:7: rule id ABC-001 is already used in a/one.md:1"),
    "empty body": ({"a.md": "---\nid: ABC-001\ntitle: t\nseverity: major\n---\n\n   \n"},
                   "a.md:5: rule ABC-001 has no text after its front matter"),
    # README.md is documentation: were it read, its missing '---' would be the error.
    "no rules": ({"README.md": "# Our rules\n", "notes.txt": "---\n"}, "has no rules"),
}


@pytest.fixture(scope="module")
def error_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Result]]:
    """`reviewer spec check DIR` of every broken spec, run side by side to keep the file fast."""
    dirs = {name: write(tmp_path_factory.mktemp("broken"), files)
            for name, (files, _) in ERROR_CASES.items()}
    dirs["missing directory"] = tmp_path_factory.mktemp("gone") / "no-such-spec"
    with ThreadPoolExecutor(max_workers=4) as pool:
        runs = {name: pool.submit(run_cli, "spec", "check", str(d)) for name, d in dirs.items()}
        return {name: (dirs[name], run.result()) for name, run in runs.items()}


@pytest.mark.parametrize("case", ERROR_CASES)
def test_spec_check_reports_rule_error_with_file_and_line_and_exits_1(
        error_runs: dict[str, tuple[Path, Result]], case: str) -> None:
    line = one_error_line(error_runs[case][1])

    assert ERROR_CASES[case][1] in line


def test_spec_check_of_a_missing_directory_exits_1_naming_it(
        error_runs: dict[str, tuple[Path, Result]]) -> None:
    missing, result = error_runs["missing directory"]

    assert f"spec directory {missing} does not exist" in one_error_line(result)


def test_front_matter_that_is_not_a_mapping_names_its_line(tmp_path: Path) -> None:
    write(tmp_path, {"a.md": HEADER_OK + "---\n- just a list\n---\nText.\n"})

    with pytest.raises(SpecError, match=r"^a\.md:7: front matter must be a YAML mapping"):
        spec.load_dir(tmp_path, str(tmp_path))


# --- cloned over HTTP ----------------------------------------------------------------------

REFS = {"default branch": (None, "c3", AT_MAIN), "branch": ("legacy", "c4", AT_LEGACY),
        "tag": ("v1.0", "c1", AT_TAG), "commit sha": ("c2", "c2", AT_C2)}


def ref_name(served: Served, ref: str | None) -> str | None:
    return served.commits.get(ref, ref) if ref else None


@pytest.mark.parametrize(("ref", "commit_key", "expected"), REFS.values(), ids=REFS.keys())
def test_cloned_spec_at_ref_loads_its_rules_and_keeps_the_token_out_of_git_dir(
        served: Served, ref: str | None, commit_key: str, expected: list[str]) -> None:
    credential = spec_git.clone_credential(served.url, SPEC_TOKEN, None, None)

    with spec_git.cloned(served.url, ref_name(served, ref), credential) as checkout:
        assert git_dir_leaks(checkout, SPEC_TOKEN, "oauth2") == []
        config = (checkout / ".git" / "config").read_text()
        assert "extraheader" not in config.lower()
        loaded = spec.load_dir(checkout, served.url, ref_name(served, ref))

    assert not checkout.exists()  # the temporary clone is removed afterwards
    assert [r.id for r in loaded.rules] == expected
    assert loaded.commit == served.commits[commit_key]
    assert served.server.users() == {"oauth2"}  # sent up front, with every request


@pytest.mark.parametrize(("ref", "expected"), [("legacy", AT_LEGACY), ("v1.0", AT_TAG),
                                             ("c2", AT_C2)], ids=["branch", "tag", "commit sha"])
def test_spec_check_clones_url_at_ref_with_spec_token(served: Served, ref: str,
                                                      expected: list[str]) -> None:
    result = run_cli("spec", "check", served.url, "--ref", str(ref_name(served, ref)), "--json",
                     env=clean_env(REVIEWER_SPEC_TOKEN=SPEC_TOKEN))

    assert ids_of(result) == expected
    assert SPEC_TOKEN not in result.stdout + result.stderr
    assert served.server.users() == {"oauth2"}


def test_spec_ref_with_a_directory_spec_is_refused(tmp_path: Path, plain_env: None) -> None:
    write(tmp_path, {"a.md": HEADER_OK})
    settings = load_settings({"spec": str(tmp_path), "spec_ref": "main"})

    with pytest.raises(SpecError, match="--spec-ref applies to a git URL"):
        load_spec(settings)


def test_unknown_spec_ref_fails_naming_the_ref(served: Served) -> None:
    credential = spec_git.Credential("oauth2", SPEC_TOKEN)

    with pytest.raises(SpecError) as raised, spec_git.cloned(served.url, "no-such-branch",
                                                        credential):
        pass

    assert str(raised.value).startswith(f"cannot clone spec {served.url} at ref "
                                        "'no-such-branch': ")
    assert "no-such-branch not found" in str(raised.value)
    assert SPEC_TOKEN not in str(raised.value)


# --- credentials: CI job token, userinfo in the URL, precedence -----------------------------

def test_ci_job_token_authenticates_as_gitlab_ci_token_on_the_ci_server_host(
        served: Served) -> None:
    env = clean_env(CI_JOB_TOKEN=JOB_TOKEN, CI_SERVER_HOST="127.0.0.1")

    result = run_cli("spec", "check", served.url, "--ref", "v1.0", "--json", env=env)

    assert ids_of(result) == AT_TAG
    assert served.server.users() == {"gitlab-ci-token"}
    assert JOB_TOKEN not in result.stdout + result.stderr


def test_ci_job_token_is_not_sent_to_another_host(served: Served) -> None:
    env = clean_env(CI_JOB_TOKEN=JOB_TOKEN, CI_SERVER_HOST="gitlab.example.com")

    line = one_error_line(run_cli("spec", "check", served.url, "--json", env=env))

    assert served.server.users() == {None}  # no credential at all reached the stand-in
    assert {r.status for r in served.server.requests} == {401}
    assert f"cannot clone spec {served.url}" in line
    assert "REVIEWER_SPEC_TOKEN" in line  # the hint says what to set
    assert JOB_TOKEN not in line


@pytest.mark.parametrize(("url", "spec_token", "job_token", "ci_host", "expected"), [
    ("https://u:p@h/s.git", "tok", "job", "h", ("u", "p")),
    ("https://h/s.git", "tok", "job", "h", ("oauth2", "tok")),
    ("https://h/s.git", None, "job", "h", ("gitlab-ci-token", "job")),
    ("https://h:8443/s.git", None, "job", "h:8443", ("gitlab-ci-token", "job")),
    ("https://other/s.git", None, "job", "h", None),
    ("https://h/s.git", None, "job", None, None),
    ("https://h/s.git", None, None, "h", None),
    ("git@h:group/s.git", "tok", "job", "h", None),
    ("ssh://git@h/group/s.git", "tok", "job", "h", None),
])
def test_clone_credential_precedence_url_then_spec_token_then_job_token_on_ci_host(
        url: str, spec_token: str | None, job_token: str | None, ci_host: str | None,
        expected: tuple[str, str] | None) -> None:
    credential = spec_git.clone_credential(url, spec_token, job_token, ci_host)

    got = (credential.username, credential.password) if credential else None
    assert got == expected


def test_credentials_in_the_url_work_and_are_never_printed(served: Served) -> None:
    url = served.with_userinfo(URL_USER, URL_PASSWORD)

    result = run_cli("spec", "check", url, "--ref", "legacy")

    assert result.code == 0, result.stderr
    assert URL_PASSWORD not in result.stdout + result.stderr
    assert f"2 rules in {served.url}" in result.stdout  # the source is shown without userinfo
    assert all(i in result.stdout for i in AT_LEGACY)
    assert served.server.users() == {URL_USER}


@pytest.mark.parametrize(("user", "password"), [(URL_USER, URL_PASSWORD),
                                                (ODD_USER, ODD_PASSWORD)])
def test_credentials_in_the_url_stay_out_of_the_clone_git_dir(served: Served, user: str,
                                                              password: str) -> None:
    url = served.with_userinfo(user, password)

    with spec_git.cloned(url, None, spec_git.clone_credential(url, None, None, None)) as checkout:
        config = (checkout / ".git" / "config").read_text()
        assert password not in config and quote(password, safe="") not in config
        assert f"url = {served.url}\n" in config
        assert git_dir_leaks(checkout, password, user) == []
        loaded = spec.load_dir(checkout, served.url)

    assert [r.id for r in loaded.rules] == AT_MAIN
    assert served.server.users() == {user}  # percent-escapes decoded, as git itself does


# --- failures: one clear line, no secret, no model call ------------------------------------

def test_unreachable_spec_exits_1_with_one_line_without_the_token() -> None:
    url = f"http://127.0.0.1:{closed_port()}/spec.git"

    line = one_error_line(run_cli("spec", "check", url, "--ref", "main",
                                  env=clean_env(REVIEWER_SPEC_TOKEN=SPEC_TOKEN)))

    assert line.startswith(f"reviewer: error: cannot clone spec {url} at ref 'main': ")
    assert "127.0.0.1" in line and SPEC_TOKEN not in line


def test_wrong_spec_token_exits_1_with_one_line_without_the_token(served: Served) -> None:
    wrong = "glpat-WrongToken000"

    line = one_error_line(run_cli("spec", "check", served.url,
                                  env=clean_env(REVIEWER_SPEC_TOKEN=wrong)))

    assert f"cannot clone spec {served.url}" in line
    assert "the server refused REVIEWER_SPEC_TOKEN" in line
    assert wrong not in line
    assert served.server.users() == {"oauth2"}
    assert {r.status for r in served.server.requests} == {401}


@pytest.mark.parametrize(("credential", "says"), [
    (spec_git.Credential("oauth2", "glpat-Wrong1111"), "the server refused REVIEWER_SPEC_TOKEN"),
    (spec_git.Credential("gitlab-ci-token", "job-Wrong2222"), "the server refused CI_JOB_TOKEN"),
    (spec_git.Credential(URL_USER, "Wrong3333"), "refused the user and password in the URL"),
])
def test_refused_credential_is_named_in_the_error_without_its_secret(
        served: Served, credential: spec_git.Credential, says: str) -> None:
    with pytest.raises(SpecError) as raised, spec_git.cloned(served.url, None, credential):
        pass

    assert says in str(raised.value)
    assert credential.password not in str(raised.value)
    assert served.server.users() == {credential.username}


def test_unknown_commit_sha_fails_with_git_reason(served: Served) -> None:
    missing = "0123456789abcdef0123456789abcdef01234567"

    with pytest.raises(SpecError) as raised, spec_git.cloned(served.url, missing,
                                                        spec_git.Credential("oauth2", SPEC_TOKEN)):
        pass

    assert str(raised.value).startswith(f"cannot clone spec {served.url} at ref '{missing}': "
                                        "fatal: ")


@pytest.fixture
def local_change(tmp_path: Path) -> Path:
    """A tiny repository whose branch `feature` changes one Python file of `main`."""
    repo = tmp_path / "project"
    repo.mkdir()
    git(repo, "init", "--quiet", "-b", "main")
    commit(repo, {"app.py": "def add(a, b):\n    return a + b\n"}, "base")
    git(repo, "checkout", "--quiet", "-b", "feature")
    commit(repo, {"app.py": "def add(a, b):\n    return a - b\n"}, "subtract instead")
    return repo


def review_local(repo: Path, llm: FakeOpenAI, spec_url: str, *extra: str,
                 env: dict[str, str] | None = None) -> Result:
    return run_cli("review", "--local", "--repo", str(repo), "--base", "main", "--head",
                   "feature", "--base-url", llm.url, "--model", "test-model", "--spec", spec_url,
                   "--output", str(repo.parent / "review.json"), *extra, env=env)


def test_review_with_unreachable_spec_stops_before_the_model_is_asked(
        local_change: Path, llm: FakeOpenAI) -> None:
    llm.queue(answer())
    url = f"http://127.0.0.1:{closed_port()}/spec.git"

    line = one_error_line(review_local(local_change, llm, url,
                                       env=clean_env(REVIEWER_SPEC_TOKEN=SPEC_TOKEN)))

    assert f"cannot clone spec {url}" in line and SPEC_TOKEN not in line
    assert llm.requests == []
    assert not (local_change.parent / "review.json").exists()


def test_review_uses_the_cloned_spec_at_spec_ref(served: Served, local_change: Path,
                                                 llm: FakeOpenAI) -> None:
    llm.queue(answer())

    result = review_local(local_change, llm, served.url, "--spec-ref", "v1.0",
                          env=clean_env(REVIEWER_SPEC_TOKEN=SPEC_TOKEN))

    assert result.code == 0, result.stderr
    assert len(llm.requests) == 1
    prompt = json.dumps(llm.requests[0]["messages"])
    assert "ALP-001" in prompt and "ALP-002" not in prompt
    review = json.loads((local_change.parent / "review.json").read_text())
    assert review["spec"] == {"source": served.url, "ref": "v1.0",
                              "commit": served.commits["c1"], "rules": AT_TAG}
    assert SPEC_TOKEN not in result.stdout + result.stderr


def test_spec_check_on_a_rule_file_asks_for_its_folder(tmp_path: Path) -> None:
    rule = tmp_path / "SEC-001.md"
    rule.write_text("---\nid: SEC-001\ntitle: T\nseverity: major\n---\nBody.\n")

    result = run_cli("spec", "check", str(rule))

    assert result.code == 1
    assert result.stderr == (f"reviewer: error: spec {rule} is a file: pass the folder that "
                             "holds the rules\n")
