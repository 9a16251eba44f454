"""Canary secrets of every kind the reviewer redacts, made fresh for each test.

Values are random, built at run time: no realistic credential is committed to this repository
(where secret scanners and push protection would rightly stop it), and a canary found in what
was sent can only have come from the change under test. The tests here check that each one is
found as its kind; test_redact.py and test_secrets_canary.py use them.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import string
from dataclasses import dataclass

import pytest

from reviewer.secrets import redact_text
from reviewer.secrets.blocks import find
from reviewer.secrets.detect import scan

ALNUM = string.ascii_letters + string.digits
UPPER = string.ascii_uppercase + string.digits
B64 = ALNUM + "+/"


# Words the detectors read as a name ("APP_SECRET_KEY" names a secret, it is not one) or a
# placeholder: a random canary that happened to hold one would be a flaky test.
NAME_LIKE = re.compile(r"(?i)key|pass|pwd|auth|cred|token|secret|test|example|dummy|x{5}")


def rnd(n: int, alphabet: str = ALNUM) -> str:
    """A random value as a credential generator makes one: with a digit when the alphabet has
    them, and letters (the entropy rules want both)."""
    while True:
        value = "".join(secrets.choice(alphabet) for _ in range(n))
        if all(set(value) & kind for kind in (set(string.digits), set(string.ascii_letters))
               if set(alphabet) & kind) and not NAME_LIKE.search(value):
            return value


def b64url(data: dict[str, str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


@dataclass(frozen=True)
class Sample:
    """Lines of a file that carry one secret of one kind; canaries: what must never be sent."""

    kind: str
    path: str
    lines: tuple[str, ...]
    canaries: tuple[str, ...]
    span: tuple[int, int] = (0, 0)  # the finding's first and last line, as indexes into lines


def one(kind: str, path: str, template: str, value: str) -> Sample:
    return Sample(kind, path, (template.format(value),), (value,))


def pem_body(lines: int = 4) -> list[str]:
    return ["MII" + rnd(61, B64)] + [rnd(64, B64) for _ in range(lines - 2)] + [rnd(40, B64) + "=="]


def key_block() -> Sample:
    body = pem_body()
    lines = ("KEY = '''", "-----BEGIN RSA PRIVATE KEY-----", *body,
             "-----END RSA PRIVATE KEY-----", "'''")
    return Sample("private-key", "deploy/keys.py", lines, tuple(body), (1, len(lines) - 2))


def gcp_service_account() -> Sample:
    body = pem_body(3)
    key = "-----BEGIN PRIVATE KEY-----\\n" + "\\n".join(body) + "\\n-----END PRIVATE KEY-----\\n"
    line = f'  "private_key": "{key}",'
    return Sample("gcp-service-account-key", "deploy/service-account.json", (line,), tuple(body))


def jwt() -> Sample:
    token = ".".join((b64url({"alg": "HS256", "typ": "JWT"}),
                      b64url({"sub": rnd(12), "name": rnd(8)}), rnd(43, ALNUM + "-_")))
    return one("json-web-token", "app/auth.py", 'SESSION = "{}"', token)


def samples() -> list[Sample]:
    """One of each kind, with fresh values."""
    return [
        one("aws-access-key", "app/aws.py", 'AWS_ACCESS_KEY_ID = "{}"', "AKIA" + rnd(16, UPPER)),
        one("aws-secret-key", "app/aws.py", 'aws_secret_access_key = "{}"', rnd(40, B64)),
        one("gcp-api-key", "app/maps.js", 'const mapsKey = "{}";', "AIza" + rnd(35)),
        one("azure-storage-key", "app/azure.py",
            'CONN = "DefaultEndpointsProtocol=https;AccountName=shop;AccountKey={}"',
            rnd(86, B64) + "=="),
        one("azure-client-secret", "config/azure.yaml", "client_secret: {}",
            rnd(3) + "8Q~" + rnd(34, ALNUM + "_-")),
        one("gitlab-token", "ci/release.sh", "export GL_TOKEN={}", "glpat-" + rnd(20)),
        one("github-token", ".github/sync.py", 'gh = Github("{}")', "ghp_" + rnd(36)),
        one("slack-token", "app/notify.py", 'SLACK = "{}"',
            f"xoxb-{rnd(12, string.digits)}-{rnd(12, string.digits)}-{rnd(24).lower()}"),
        one("stripe-key", "app/billing.py", 'stripe.api_key = "{}"', "sk_live_" + rnd(99)),
        jwt(),
        one("database-url-password", "settings.py",
            'DATABASES_URL = "postgres://shop:{}@db.internal:5432/shop"', rnd(18)),
        one("database-url-password", "config/db.yaml", "url: mysql://shop:{}@db:3306/shop",
            rnd(10) + "!$&*"),
        one("secret", "app/settings.py", 'password = "{}"', rnd(14)),
        one("secret", "config/app.env", "APP_SECRET={}", rnd(24)),
        one("secret", "app/client.py", 'api_token = "{}"', rnd(32)),
        one("secret", "app/client.ts", "const authToken: string = '{}';", rnd(40)),
        key_block(),
        gcp_service_account(),
    ]


@pytest.mark.parametrize("sample", samples(), ids=lambda s: f"{s.kind}:{s.path}")
def test_each_canary_is_found_as_its_kind(sample: Sample) -> None:
    kinds = {h.kind for line in sample.lines for h in scan(line, sample.path) if h.report}
    kinds |= {b.kind for b in find(sample.lines)}
    assert sample.kind in kinds
    redacted = redact_text("\n".join(sample.lines), sample.path)
    assert f"<redacted:{sample.kind}>" in redacted
    assert not [c for c in sample.canaries if c in redacted]
