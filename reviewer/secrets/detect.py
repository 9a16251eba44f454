"""Pure: where the likely secrets are in one line of text, and what kind each one is.

The ruleset is detect-secrets' (Yelp, Apache-2.0), used as a library: its provider plugins
(AWS, Azure storage, GitHub, GitLab, Slack, Stripe, JWT, URLs with a password, OpenAI, npm,
PyPI, SendGrid, Twilio, ...) find the values, its KeywordDetector finds ``password = "..."``-style
assignments, and its heuristic filters drop what only looks like a secret (``get_password()``,
``request.headers["X"]``, ``${VAR}``, UUIDs, ``*_id``). Only the regular expressions run: no
plugin's ``verify`` (which would send the secret to its provider) is ever called.

EXTRA holds the few patterns it lacks, each named with its source; private key blocks, which
span lines, are found in blocks.py.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import cast

from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
from detect_secrets.filters import heuristic
from detect_secrets.plugins.base import BasePlugin, RegexBasedDetector
from detect_secrets.plugins.high_entropy_strings import Base64HighEntropyString
from detect_secrets.plugins.keyword import DENYLIST, KeywordDetector

# Ranks: when two hits overlap, the lower rank names the placeholder (a Stripe key assigned to
# API_KEY is a "stripe-key", not a "secret").
PROVIDER, ASSIGNMENT, CREDENTIAL, ENTROPY = 0, 1, 2, 3

# Handled apart: the keyword and entropy plugins need context checks; private keys span lines
# (blocks.py); a public IP address is no secret.
APART = frozenset({"Secret Keyword", "Base64 High Entropy String", "Hex High Entropy String",
                   "Private Key", "Public IP (ipv4)"})
KINDS = {"AWS Access Key": "aws-access-key", "Basic Auth Credentials": "url-password",
         "Azure Storage Account access key": "azure-storage-key", "NPM tokens": "npm-token",
         "Stripe Access Key": "stripe-key", "OpenAI Token": "openai-key"}

# Patterns detect-secrets 1.5 lacks, with their sources (gitleaks' rules, MIT; providers' docs).
EXTRA: dict[str, re.Pattern[str]] = {
    # GitHub fine-grained personal access tokens (gitleaks "github-fine-grained-pat").
    "github-token": re.compile(r"github_pat_\w{82}"),
    # Google API keys (gitleaks "gcp-api-key").
    "gcp-api-key": re.compile(r"\bAIza[\w-]{35}(?![\w-])"),
    # Azure AD / Entra client secrets (gitleaks "azure-ad-client-secret").
    "azure-client-secret": re.compile(r"(?<![\w~.-])[\w~.]{3}\dQ~[\w~.-]{31,34}(?![\w~.-])"),
    # Azure connection strings' shared access keys (Service Bus, Event Hubs, IoT Hub).
    "azure-shared-access-key": re.compile(r"SharedAccessKey=([A-Za-z0-9+/]{43}=)"),
    # A URL's password with RFC 3986's sub-delimiters (postgres://app:pa$$w0rd!@db), which
    # detect-secrets' BasicAuthDetector leaves out.
    "url-password": re.compile(r"://[^\s:/?#@\"'`]+:([^\s/?#@\"'`]+)@"),
}
# A database URL names its scheme: the title then says what the password opens.
DATABASE_SCHEMES = re.compile(r"(?i)\b(postgres(?:ql)?|mysql|mariadb|mongodb(?:\+srv)?|redis|"
                              r"rediss|amqps?|mssql|sqlserver|oracle|jdbc:[a-z]+)://[^\s]*$")
# Where a plugin's match may stop short of the whole token (a Stripe key longer than its
# regex, a JWT whose lazy tail leaves the signature out), the hit grows over these characters.
TOKEN_CHARS = re.compile(r"[A-Za-z0-9_\-+/=.~]")
TOKEN_START = re.compile(r"[A-Za-z0-9_\-]")  # leftwards: never over a "name=" before it
# Keyword values that name or describe a secret rather than hold one (SEC-002's "not a
# finding": placeholders, setting names, fixtures).
NOT_A_VALUE = re.compile(r"(?i)example|changeme|change_me|placeholder|dummy|redacted|x{5,}|"
                         r"\*{3,}|^your[_-]|^<.*>$|^(none|null|nil|true|false|test|todo|pass(word)?|secret)$")
# An assignment's quoted value, then the name before it (what the entropy rules look at). Two
# steps, each bounded, keep a 1 MB line linear.
ASSIGNED = re.compile(r"""(?:=|:|=>)\s*[@rbuf]?(?P<q>["'`])(?P<value>[A-Za-z0-9+/=_\-.~]{16,128})"""
                      r"""(?P=q)""")
NAME = re.compile(r"[A-Za-z_][\w.\-]*")
STATEMENT = re.compile(r"[;,({]")  # what comes before a statement's target
# Words of a name that say it holds a credential (gitleaks' generic-api-key keywords).
CREDENTIAL_WORDS = frozenset({"token", "secret", "password", "passwd", "pwd", "passphrase",
                              "credential", "credentials", "creds", "apikey", "bearer"})
KEY_QUALIFIERS = frozenset({"api", "access", "secret", "private", "auth", "signing", "client",
                            "encryption", "master", "account", "service", "app", "session"})
# Names whose random-looking values are digests, not secrets: never redacted by entropy alone.
DIGEST_WORDS = frozenset({"integrity", "sha", "sha1", "sha256", "sha384", "sha512", "md5", "hash",
                          "checksum", "digest", "etag", "commit", "rev", "revision", "nonce"})
CAMEL = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")
DOTENV = re.compile(r"(^|/)\.env(\.[\w-]+)?$|\.env$")


@dataclass(frozen=True)
class Hit:
    """A likely secret at line[start:end]; report False: redacted, but not a finding."""

    start: int
    end: int
    kind: str  # the placeholder's slug: "aws-access-key", "secret", "private-key", ...
    rank: int = PROVIDER
    report: bool = True


def _slug(secret_type: str) -> str:
    return KINDS.get(secret_type) or re.sub(r"[^a-z0-9]+", "-", secret_type.lower()).strip("-")


def _plugins() -> tuple[tuple[str, BasePlugin], ...]:
    """Every provider plugin detect-secrets ships (new ones join on upgrade), by kind."""
    classes = cast(dict[str, type[BasePlugin]], get_mapping_from_secret_type_to_class())
    return tuple((_slug(name), cls()) for name, cls in sorted(classes.items())
                 if name not in APART)


PLUGINS = _plugins()
KEYWORD = KeywordDetector()
# Searched in the lower-cased line: ten times faster than re.IGNORECASE over the alternatives.
KEYWORD_WORDS = re.compile("|".join(DENYLIST))
ENTROPY_PLUGIN = Base64HighEntropyString(limit=4.5)  # detect-secrets' default limit


def scan(line: str, path: str = "") -> list[Hit]:
    """Every likely secret in one line (path chooses the keyword rules by file type)."""
    hits = list(_providers(line))
    hits += _keywords(line, path)
    hits += _entropy(line)
    return hits


def _patterns(plugin: BasePlugin) -> tuple[re.Pattern[str], ...] | None:
    """A regex plugin's own patterns (its analyze_string yields only what they match, a subset
    for the JWT plugin); None for a plugin that finds values some other way."""
    return tuple(plugin.denylist) if isinstance(plugin, RegexBasedDetector) else None


# Searching a plugin's patterns first costs half of running the plugin, which builds
# generators and lists for every line: a scan of ordinary code takes half the time.
GUARDED = tuple((kind, plugin, _patterns(plugin)) for kind, plugin in PLUGINS)


def _providers(line: str) -> Iterator[Hit]:
    for kind, plugin, patterns in GUARDED:
        if patterns is not None and not _matches(patterns, line):
            continue
        for value in set(plugin.analyze_string(line)):
            yield from _located(line, value, _kind(kind, value, line), PROVIDER, grow=True)
    for kind, pattern in EXTRA.items():
        for match in pattern.finditer(line):
            group = 1 if match.groups() else 0
            value = match[group]
            if len(value) >= 3 and not (NOT_A_VALUE.search(value) or _placeholder(value)):
                yield Hit(match.start(group), match.end(group), _kind(kind, value, line))


def _matches(patterns: tuple[re.Pattern[str], ...], line: str) -> bool:
    # A loop, not any() over a generator (twice the cost): this runs for every plugin on
    # every line sent.
    for pattern in patterns:  # noqa: SIM110
        if pattern.search(line):
            return True
    return False


def _placeholder(value: str) -> bool:
    """A template's slot, not a value: {password}, <token>, ${DB_PASSWORD}, $PASSWORD, %s."""
    return (heuristic.is_templated_secret(value) or heuristic.is_prefixed_with_dollar_sign(value)
            or value.startswith("%"))


def _kind(kind: str, value: str, line: str) -> str:
    """A plugin's kind, made precise where one plugin finds two kinds of secret."""
    if kind == "aws-access-key" and len(value.strip()) == 40:
        return "aws-secret-key"  # the plugin's second pattern: the 40-character secret
    if kind == "url-password" and DATABASE_SCHEMES.search(line[:line.find(value)]):
        return "database-url-password"
    return kind


def _located(line: str, value: str, kind: str, rank: int, grow: bool = False) -> Iterator[Hit]:
    """Each place value occurs in line (a plugin yields values, not positions)."""
    value = value.strip(" \t\"'=:")  # some patterns match their delimiters too
    if len(value) < (3 if grow else 4):
        return
    found = line.find(value)
    while found >= 0:
        start, end = found, found + len(value)
        if grow:  # detect-secrets yields a pattern's first group: "ghp" for a GitHub token
            while start > 0 and TOKEN_START.match(line[start - 1]):
                start -= 1
            while end < len(line) and TOKEN_CHARS.match(line[end]):
                end += 1
        found_value = line[start:end]
        if end - start >= (8 if grow else 4) and not (NOT_A_VALUE.search(found_value)
                                                      or _placeholder(found_value)):
            yield Hit(start, end, kind, rank)
        found = line.find(value, found + len(value))


def _keywords(line: str, path: str) -> Iterator[Hit]:
    # A .env file is config: its values go unquoted, as in an .ini file; so does free text.
    if not KEYWORD_WORDS.search(line.lower()):
        return
    name = "x.ini" if not path or DOTENV.search(path) else path
    for secret in KEYWORD.analyze_line(filename=name, line=line):
        value = secret.secret_value or ""
        if len(value) < 6 or " " in value or _filtered(value, line) or _names_one(value):
            continue  # a label ("Enter password"), a setting's name ("DB_PASSWORD") or prose
        yield from _located(line, value, "secret", ASSIGNMENT)


def _filtered(value: str, line: str) -> bool:
    """detect-secrets' own heuristic filters, its defaults for keyword and entropy hits."""
    return (heuristic.is_sequential_string(value) or heuristic.is_potential_uuid(value)
            or heuristic.is_likely_id_string(value, line)
            or heuristic.is_templated_secret(value)
            or heuristic.is_prefixed_with_dollar_sign(value)
            or heuristic.is_indirect_reference(line)
            or heuristic.is_not_alphanumeric_string(value))


def _entropy(line: str) -> Iterator[Hit]:
    """Random-looking strings assigned to a name. Under a credential's name (api_token,
    authToken, CLIENT_SECRET) a lower bar and a finding, as gitleaks' generic-api-key rule;
    under any other name only detect-secrets' high bar, redacted without a finding (hashes,
    nonces and fixtures look the same, and a finding is critical)."""
    for match in ASSIGNED.finditer(line):
        value = match["value"]
        if _filtered(value, line) or NOT_A_VALUE.search(value):
            continue
        entropy = ENTROPY_PLUGIN.calculate_shannon_entropy(value)
        mixed = any(c.isdigit() for c in value) and any(c.isalpha() for c in value)
        names = _target(line[max(0, match.start() - 64):match.start()])
        if DIGEST_WORDS.intersection(w for n in names for w in _words(n)):
            continue
        if any(map(_credential_name, names)) and entropy >= 3.5 and mixed:
            yield Hit(match.start("value"), match.end("value"), "secret", CREDENTIAL)
        elif names and entropy > ENTROPY_PLUGIN.entropy_limit and len(value) >= 20:
            yield Hit(match.start("value"), match.end("value"), "high-entropy-string", ENTROPY,
                      report=False)


def _target(before: str) -> list[str]:
    """The names an assignment's value goes to: the last two words before the operator, so a
    declaration's name counts beside its type ("const authToken", "authToken: string")."""
    return NAME.findall(STATEMENT.split(before)[-1])[-2:]


def _words(name: str) -> list[str]:
    """A name's words, lower case: snake_case, kebab-case, camelCase and CAPS alike."""
    return [w.lower() for part in re.split(r"[^A-Za-z0-9]+", name) for w in CAMEL.findall(part)]


def _names_one(value: str) -> bool:
    """A value that names a credential rather than holds one: "password", "my-secret",
    "APP_SECRET_KEY" (a label or a setting's name; "monkey123" is no such name)."""
    return bool((CREDENTIAL_WORDS | {"pass", "key", "auth"}).intersection(_words(value)))


def _credential_name(name: str) -> bool:
    words = _words(name)
    if CREDENTIAL_WORDS.intersection(words):
        return True
    return any(w == "key" and i > 0 and words[i - 1] in KEY_QUALIFIERS
               for i, w in enumerate(words))


def label(kind: str) -> str:
    """A kind in words, for a finding's title: "aws-access-key" -> "AWS access key"."""
    return LABELS.get(kind) or kind.replace("-", " ")


LABELS = {
    "aws-access-key": "AWS access key", "aws-secret-key": "AWS secret access key",
    "azure-storage-key": "Azure storage account key", "azure-client-secret":
    "Azure client secret", "azure-shared-access-key": "Azure shared access key",
    "gcp-api-key": "Google Cloud API key", "gcp-service-account-key":
    "Google Cloud service account key", "github-token": "GitHub token", "gitlab-token":
    "GitLab token", "slack-token": "Slack token", "stripe-key": "Stripe secret key",
    "json-web-token": "JSON Web Token", "openai-key": "OpenAI API key",
    "url-password": "password in a URL", "database-url-password": "database password in a URL",
    "secret": "hard-coded secret", "private-key": "private key", "npm-token": "npm token",
    "pypi-token": "PyPI token", "sendgrid-api-key": "SendGrid API key",
}
