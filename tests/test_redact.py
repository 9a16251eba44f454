"""reviewer.secrets: what is redacted, how the line keeps its shape, and which findings come out."""

from __future__ import annotations

import re
import time
from collections.abc import Sequence

import pytest
import requests

from reviewer import check, spec
from reviewer.diff import DiffLine, FileDiff, Hunk, LineKind
from reviewer.model import Finding
from reviewer.secrets import PLACEHOLDER, merge, redact_files, redact_text, secrets_rule
from reviewer.secrets.detect import scan
from tests.test_secrets_samples import Sample, key_block, pem_body, rnd, samples

SIGN = {"+": LineKind.ADDED, "-": LineKind.REMOVED, " ": LineKind.CONTEXT}
PLACEHOLDERS = re.compile(r"<redacted:[a-z0-9-]+>")


def hunk(rows: Sequence[str], old: int = 1, new: int = 1) -> Hunk:
    """A hunk from rows written as a diff shows them ("+added", "-removed", " context")."""
    lines = []
    for row in rows:
        kind = SIGN[row[0]]
        lines.append(DiffLine(kind, None if kind == LineKind.ADDED else old,
                              None if kind == LineKind.REMOVED else new, row[1:]))
        old += kind != LineKind.ADDED
        new += kind != LineKind.REMOVED
    return Hunk(1, 1, "@@", tuple(lines))


def file(path: str, *hunks: Hunk) -> FileDiff:
    return FileDiff(path, path, "modified", hunks)


def added(sample: Sample, before: int = 2) -> FileDiff:
    """The sample's lines added below a few context lines."""
    rows = [" import os"] * before + [f"+{line}" for line in sample.lines] + [" # end"]
    return file(sample.path, hunk(rows))


def texts(files: Sequence[FileDiff]) -> str:
    return "\n".join(ln.text for f in files for h in f.hunks for ln in h.lines)


@pytest.mark.parametrize("sample", samples(), ids=lambda s: f"{s.kind}:{s.path}")
def test_each_secret_is_replaced_and_becomes_a_finding_on_its_line(sample: Sample) -> None:
    original = added(sample)
    result = redact_files([original], rule="SEC-002")
    redacted = result.files[0]
    assert not [c for c in sample.canaries if c in texts(result.files)]
    assert PLACEHOLDER.format(kind=sample.kind) in texts(result.files)
    # Same lines, kinds and numbers: positions computed on the redacted diff still hold.
    pairs = zip(original.hunks[0].lines, redacted.hunks[0].lines, strict=True)
    assert all((a.kind, a.old, a.new) == (b.kind, b.old, b.new) for a, b in pairs)
    [finding] = result.findings
    first, last = (3 + i for i in sample.span)  # two context lines above
    assert (finding.path, finding.line, finding.side) == (sample.path, first, "new")
    assert finding.end_line == (last if last != first else None)
    assert (finding.severity, finding.rule, finding.suggestion) == ("critical", "SEC-002", None)
    assert finding.title.startswith("Secret committed: ")
    assert "Rotate" in finding.message
    assert not [c for c in sample.canaries if c in finding.model_dump_json()]
    assert check.place(finding, {sample.path: redacted}).placed


def test_the_placeholder_keeps_the_rest_of_the_line() -> None:
    token = "glpat-" + rnd(20)
    line = f'    client = Gitlab(URL, private_token="{token}", timeout=5)  # CI'
    [out] = redact_text(line).split("\n")
    assert out == ('    client = Gitlab(URL, private_token="<redacted:gitlab-token>", '
                   "timeout=5)  # CI")
    password = rnd(16)
    assert redact_text(f"DATABASE_URL=postgres://shop:{password}@db:5432/shop?ssl=1") == \
        "DATABASE_URL=postgres://shop:<redacted:database-url-password>@db:5432/shop?ssl=1"


def test_the_same_secret_redacts_to_the_same_text_and_keeps_its_fingerprint() -> None:
    """The placeholder names the kind only (no hash of the value, which a small dictionary
    could reverse for a weak password), so runs and secrets of one kind give the same line."""
    one, two = (f'STRIPE_KEY = "sk_live_{rnd(32)}"' for _ in range(2))
    assert redact_text(one) == redact_text(two) == 'STRIPE_KEY = "<redacted:stripe-key>"'
    fingerprints = set()
    for line in (one, one, two):
        result = redact_files([file("pay.py", hunk([f"+{line}"]))], rule="SEC-002")
        placed = check.place(result.findings[0], {"pay.py": result.files[0]})
        fingerprints.add(placed.fingerprint)
    assert len(fingerprints) == 1


def test_context_and_removed_lines_are_redacted_but_only_added_ones_are_findings() -> None:
    kept, gone, new = ("AKIA" + rnd(16, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") for _ in range(3))
    rows = [f' OLD = "{kept}"', f'-GONE = "{gone}"', f'+NEW = "{new}"', " x = 1"]
    result = redact_files([file("aws.py", hunk(rows))], rule=None)
    assert not {kept, gone, new} & set(re.findall(r"AKIA\w+", texts(result.files)))
    assert texts(result.files).count("<redacted:aws-access-key>") == 3
    assert [(f.line, f.side, f.rule) for f in result.findings] == [(2, "new", None)]
    assert result.redacted == 3


def test_a_key_block_is_one_finding_from_its_first_to_its_last_line() -> None:
    sample = key_block()
    result = redact_files([added(sample, before=5)], rule="SEC-002")
    [finding] = result.findings
    assert (finding.line, finding.end_line) == (7, 4 + len(sample.lines))  # BEGIN to END
    lines = result.files[0].hunks[0].lines
    assert lines[6].text == "-----BEGIN RSA PRIVATE KEY-----"  # the markers stay readable
    assert lines[7].text == "<redacted:private-key>"
    assert lines[-3].text == "-----END RSA PRIVATE KEY-----"


def test_a_key_block_cut_by_the_hunk_runs_to_its_end_and_a_shown_end_redacts_above() -> None:
    body = pem_body(6)
    head = redact_files([file("k.pem", hunk(
        ["+-----BEGIN OPENSSH PRIVATE KEY-----", *(f"+{b}" for b in body[:3])]))])
    tail = redact_files([file("k.pem", hunk(
        [*(f" {b}" for b in body[3:]), " -----END OPENSSH PRIVATE KEY-----", " "], old=9, new=9))])
    assert not [b for b in body if b in texts(head.files) + texts(tail.files)]
    assert [(f.line, f.end_line) for f in head.findings] == [(1, 4)]
    assert tail.findings == []  # all context: not the change's doing


def test_a_key_block_partly_context_is_a_finding_when_the_change_adds_to_it() -> None:
    body = pem_body(3)
    rows = [" -----BEGIN EC PRIVATE KEY-----", f" {body[0]}", f"-{rnd(64)}", f"+{body[1]}",
            f" {body[2]}", " -----END EC PRIVATE KEY-----"]
    result = redact_files([file("k.pem", hunk(rows, old=10, new=10))])
    assert [(f.line, f.end_line) for f in result.findings] == [(10, 14)]
    assert not [b for b in body if b in texts(result.files)]
    assert "-<redacted" not in texts(result.files)  # the removed line was redacted too
    assert texts(result.files).count("<redacted:private-key>") == 4


def test_text_sent_beside_the_diff_is_redacted_too() -> None:
    token, body = "ghp_" + rnd(36), pem_body(3)
    description = "\n".join(["Deploy with", f"GITHUB_TOKEN={token}", "and the key:",
                             "-----BEGIN PRIVATE KEY-----", *body, "-----END PRIVATE KEY-----"])
    out = redact_text(description)
    assert token not in out and not [b for b in body if b in out]
    assert out.split("\n")[:3] == ["Deploy with", "GITHUB_TOKEN=<redacted:github-token>",
                                   "and the key:"]
    assert redact_text(f"Rotate {token} today") == "Rotate <redacted:github-token> today"


ORDINARY = [
    "password = get_password()",
    'token = request.headers["X"]',
    'password = os.environ["DB_PASSWORD"]',
    "secret = settings.SECRET_KEY",
    'api_key = config.get("api_key")',
    'PASSWORD_FIELD = "password"',
    'SECRET_ENV = "APP_SECRET_KEY"',
    'password = ""',
    'password = "changeme"',
    'db_password: "{{ vault_db_password }}"',
    "password: ${DB_PASSWORD}",
    'TOKEN_URL = "https://gitlab.example.com/oauth/token"',
    'tokenizer = "bert-base-uncased"',
    'cache_key = "user-profile-settings-v2"',
    'if token_type == "bearer":',
    'help = "Enter your password to continue"',
    'url = "https://user@example.com/path"',
    'DATABASE_URL = "postgres://localhost:5432/shop"',
    'url = "postgres://%s:%s@%s/%s" % (user, password, host, name)',
    'url = f"postgres://{user}:{password}@{host}/shop"',
    "DATABASE_URL: postgres://shop:${DB_PASSWORD}@db:5432/shop",
    "git clone https://oauth2:$GITLAB_TOKEN@gitlab.example.com/group/spec.git",
    'ssh = "git@gitlab.example.com:group/app.git"',
    'commit = "3f786850e387550fdab836ed7e6dc881de23001b"',
    'sha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"',
    '  "integrity": "sha512-' + "Qm9vdHN0cmFwIGludGVncml0eSBoYXNoIGZvciBhIHBhY2thZ2Ugb2Yg" + '",',
    'request_id = "9f1c0d7e-6b2a-4c3d-8e9f-0a1b2c3d4e5f"',
    'user_id = "aB3dE5fG7hJ9kL1mN3pQ5r"',
    'ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"',
    'version = "1.2.3"',
    "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7 deploy@ci",
    "-----BEGIN PUBLIC KEY-----",
    'log.info("token refreshed for %s", user)',
    "def check_password(password: str) -> bool:",
    "    return hmac.compare_digest(password, stored)",
]


@pytest.mark.parametrize("line", ORDINARY)
def test_ordinary_code_is_neither_redacted_nor_reported(line: str) -> None:
    result = redact_files([file("app/settings.py", hunk([f"+{line}"]))], rule="SEC-002")
    assert texts(result.files) == line
    assert result.findings == [] and result.redacted == 0


def test_a_random_string_under_a_neutral_name_is_redacted_without_a_finding() -> None:
    """Entropy alone: a nonce, a fixture or an unnamed key look alike; the model need not read
    it, and a critical finding on a guess would block the merge."""
    value = rnd(40)
    result = redact_files([file("app.py", hunk([f'+DEFAULT_SIGNATURE = "{value}"']))])
    assert value not in texts(result.files)
    assert "<redacted:high-entropy-string>" in texts(result.files)
    assert result.findings == []


def test_no_plugin_ever_verifies_a_secret_with_its_provider(monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    """detect-secrets can check a secret by sending it to its provider (Slack, Stripe, AWS):
    that would be a leak of its own. Even with its verification switched on, nothing is sent."""
    from detect_secrets.settings import transient_settings

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a secret was about to be sent over the network")

    monkeypatch.setattr(requests.Session, "request", refuse)
    policy = {"path": "detect_secrets.filters.common.is_ignored_due_to_verification_policies",
              "min_level": 2}
    with transient_settings({"plugins_used": [], "filters_used": [policy]}):
        result = redact_files([added(s) for s in samples()])
    assert len(result.findings) == len(samples())


def test_merge_keeps_one_finding_per_secret_and_the_models_other_findings() -> None:
    ours = redact_files([added(s) for s in samples()[:2]], rule="SEC-002").findings
    path, line = ours[0].path, ours[0].line
    theirs = [
        Finding(path=path, line=line, severity="major", rule="SEC-002", title="Hard-coded key",
                message="m"),
        Finding(path=path, line=line, severity="minor", rule=None, title="Redacted secret here",
                message="m"),
        Finding(path=path, line=line, severity="major", rule="COR-001", title="Unhandled error",
                message="m"),
        Finding(path=path, line=line + 1, severity="major", rule="SEC-002", title="Other line",
                message="m"),
    ]
    merged = merge(ours, theirs)
    assert merged[:2] == ours
    assert [f.title for f in merged[2:]] == ["Unhandled error", "Other line"]


def test_the_secrets_rule_is_found_in_the_bundled_spec_and_absent_elsewhere() -> None:
    bundled = spec.load(None, None, None, lambda url: None)
    assert secrets_rule(bundled.rules) == "SEC-002"
    assert secrets_rule([r for r in bundled.rules if r.id != "SEC-002"]) is None


def test_placeholders_read_as_data_not_as_instructions() -> None:
    out = texts(redact_files([added(s) for s in samples()]).files)
    assert PLACEHOLDERS.findall(out)
    for placeholder in set(PLACEHOLDERS.findall(out)):
        assert re.fullmatch(r"<redacted:[a-z0-9]+(-[a-z0-9]+)*>", placeholder)


def test_huge_input_stays_linear() -> None:
    """A 1 MB line and a 20,000-line hunk: the patterns are bounded, nothing backtracks."""
    lines = ['password = "' + "a" * 1_000_000, "password:" * 50_000, "=" * 500_000,
             'x = "' + "A1" * 200_000 + '"']
    started = time.monotonic()
    for line in lines:
        scan(line, "app.py")
    big = file("big.py", hunk([f"+value_{i} = compute({i}, 'x')" for i in range(20_000)]))
    redact_files([big])
    assert time.monotonic() - started < 30
