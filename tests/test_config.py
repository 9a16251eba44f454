"""Settings precedence (flags > REVIEWER_* > CI_* > defaults), parsing, validation and secrets."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from reviewer.config import DEFAULT_BASE_URL, Settings, load_settings, reveal
from reviewer.errors import UsageError
from tests.conftest import API_KEY, TOKEN, clean_env, run_cli


@pytest.fixture(autouse=True)
def no_configuration_from_outside(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts from an environment that configures nothing."""
    for name in list(os.environ):
        if name.startswith(("CI_", "REVIEWER_", "OPENAI_", "GITLAB_")) or name in ("CI",):
            monkeypatch.delenv(name)


def value(settings: Settings, field: str) -> Any:
    got = getattr(settings, field)
    return got.get_secret_value() if isinstance(got, SecretStr) else got


# Per option: the flag's field, then its environment variables from strongest to weakest,
# one distinct value for each source, and the default.
PRECEDENCE = [
    ("gitlab_url", ["REVIEWER_GITLAB_URL", "CI_SERVER_URL"],
     ["https://flag.example", "https://reviewer.example", "https://ci.example"], None),
    ("project", ["REVIEWER_PROJECT", "CI_MERGE_REQUEST_PROJECT_ID", "CI_PROJECT_ID"],
     ["group/flag", "group/reviewer", "42", "7"], None),
    ("mr", ["REVIEWER_MR_IID", "CI_MERGE_REQUEST_IID"], [3, 2, 1], None),
    ("base_url", ["REVIEWER_BASE_URL", "OPENAI_BASE_URL"],
     ["http://flag:1/v1", "http://reviewer:2/v1", "http://openai:3/v1"], DEFAULT_BASE_URL),
    ("api_key", ["REVIEWER_API_KEY", "OPENAI_API_KEY"],
     ["sk-flag-key", "sk-reviewer-key", "sk-openai-key"], None),
    ("token", ["REVIEWER_GITLAB_TOKEN", "GITLAB_TOKEN"],
     ["glpat-flag", "glpat-reviewer", "glpat-gitlab"], None),
]


@pytest.mark.parametrize(("field", "names", "values", "default"), PRECEDENCE,
                         ids=[p[0] for p in PRECEDENCE])
def test_each_source_wins_over_every_source_below_it(
        monkeypatch: pytest.MonkeyPatch, field: str, names: list[str], values: list[Any],
        default: Any) -> None:
    flag, *from_env = values
    for name, env_value in zip(names, from_env, strict=True):
        monkeypatch.setenv(name, str(env_value))

    assert value(load_settings({field: flag}), field) == flag
    for name, expected in zip(names, from_env, strict=True):
        assert value(load_settings({}), field) == expected, f"{name} should win"
        monkeypatch.delenv(name)
    assert value(load_settings({}), field) == default


def test_a_flag_left_out_is_none_and_does_not_hide_the_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REVIEWER_GITLAB_URL", "https://reviewer.example")

    settings = load_settings({"gitlab_url": None, "exclude": ()})

    assert settings.gitlab_url == "https://reviewer.example"


def test_the_merge_requests_project_wins_over_the_pipelines_project_for_forks(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # A fork's MR pipeline: CI_PROJECT_ID is the fork, the MR lives in the target project.
    monkeypatch.setenv("CI_PROJECT_ID", "1001")
    monkeypatch.setenv("CI_MERGE_REQUEST_PROJECT_ID", "42")

    assert load_settings({}).project == "42"


def test_an_empty_variable_counts_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    # CI templates often pass an input through as "" when it was not given.
    monkeypatch.setenv("REVIEWER_GITLAB_URL", "")
    monkeypatch.setenv("CI_SERVER_URL", "https://ci.example")
    monkeypatch.setenv("REVIEWER_FAIL_UNDER", "")
    monkeypatch.setenv("REVIEWER_DRY_RUN", "")

    settings = load_settings({})

    assert settings.gitlab_url == "https://ci.example"
    assert settings.fail_under is None
    assert settings.dry_run is False


@pytest.mark.parametrize("raw", [
    "docs/,*.md,!keep.md",
    "docs/\n*.md\n!keep.md\n",
    " docs/ ,\n *.md ,, !keep.md ",
])
def test_reviewer_exclude_splits_on_commas_and_newlines(monkeypatch: pytest.MonkeyPatch,
                                                        raw: str) -> None:
    monkeypatch.setenv("REVIEWER_EXCLUDE", raw)

    assert load_settings({}).exclude == ("docs/", "*.md", "!keep.md")


def test_repeated_exclude_flags_each_add_a_glob_and_replace_the_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REVIEWER_EXCLUDE", "from-env/")

    assert load_settings({"exclude": ["docs/", "*.md"]}).exclude == ("docs/", "*.md")
    assert load_settings({}).exclude == ("from-env/",)


@pytest.mark.parametrize(("raw", "expected"), [
    ("true", True), ("1", True), ("yes", True), ("false", False), ("0", False),
])
def test_reviewer_dry_run_reads_booleans(monkeypatch: pytest.MonkeyPatch, raw: str,
                                         expected: bool) -> None:
    monkeypatch.setenv("REVIEWER_DRY_RUN", raw)

    assert load_settings({}).dry_run is expected


def test_defaults_without_any_configuration() -> None:
    settings = load_settings({})

    assert (settings.base_url, settings.dry_run, settings.exclude, settings.fail_under,
            settings.fail_on, settings.token, settings.api_key) == (
        "http://localhost:11434/v1", False, (), None, None, None, None)


def test_fail_on_accepts_any_case(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REVIEWER_FAIL_ON", " Major ")

    assert load_settings({}).fail_on == "major"


@pytest.mark.parametrize(("name", "raw", "field"), [
    ("REVIEWER_FAIL_UNDER", "abc", "--fail-under / REVIEWER_FAIL_UNDER"),
    ("REVIEWER_FAIL_UNDER", "101", "--fail-under / REVIEWER_FAIL_UNDER"),
    ("REVIEWER_FAIL_UNDER", "-1", "--fail-under / REVIEWER_FAIL_UNDER"),
    ("REVIEWER_FAIL_ON", "urgent", "--fail-on / REVIEWER_FAIL_ON"),
    ("REVIEWER_MR_IID", "seven", "--mr / REVIEWER_MR_IID / CI_MERGE_REQUEST_IID"),
])
def test_invalid_values_are_usage_errors_naming_the_setting(monkeypatch: pytest.MonkeyPatch,
                                                            name: str, raw: str,
                                                            field: str) -> None:
    monkeypatch.setenv(name, raw)

    with pytest.raises(UsageError, match=rf"^invalid {re.escape(field)}: "):
        load_settings({})


def test_fail_under_bounds_are_valid() -> None:
    assert load_settings({"fail_under": 0}).fail_under == 0
    assert load_settings({"fail_under": 100}).fail_under == 100


@pytest.mark.parametrize(("args", "env"), [
    ((), {"REVIEWER_FAIL_UNDER": "abc"}),
    (("--fail-on", "urgent"), {}),
], ids=["env", "flag"])
def test_an_invalid_value_exits_2_with_one_line_on_stderr(args: tuple[str, ...],
                                                          env: dict[str, str]) -> None:
    result = run_cli("review", *args, env=clean_env(**env))

    assert result.code == 2, (result.stdout, result.stderr)
    assert result.stderr.endswith("\n") and len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith("reviewer: error: invalid --fail-")
    assert "Traceback" not in result.stderr + result.stdout


# --- secrets ----------------------------------------------------------------------------------

SECRETS = {"REVIEWER_GITLAB_TOKEN": TOKEN, "REVIEWER_API_KEY": API_KEY,
           "REVIEWER_SPEC_TOKEN": "glpat-SpecToken789", "CI_JOB_TOKEN": "ci-JobToken-0a1b2c"}


def test_secrets_are_secret_strings_that_repr_does_not_reveal(
        monkeypatch: pytest.MonkeyPatch) -> None:
    for name, secret in SECRETS.items():
        monkeypatch.setenv(name, secret)

    settings = load_settings({})

    assert all(isinstance(s, SecretStr) for s in (
        settings.token, settings.api_key, settings.spec_token, settings.ci_job_token))
    shown = repr(settings) + str(settings) + settings.model_dump_json()
    assert not [s for s in SECRETS.values() if s in shown]


def test_secrets_lists_every_secret_in_use(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, secret in SECRETS.items():
        monkeypatch.setenv(name, secret)

    assert sorted(load_settings({}).secrets()) == sorted(SECRETS.values())


def test_secrets_from_flags_are_listed_too() -> None:
    settings = load_settings({"token": TOKEN, "api_key": API_KEY})

    assert sorted(settings.secrets()) == sorted([TOKEN, API_KEY])


def test_secrets_leaves_out_values_too_short_to_redact_safely() -> None:
    # Redacting "x" would garble every message; such a value is no real secret anyway.
    assert load_settings({"api_key": "x", "token": TOKEN}).secrets() == [TOKEN]


@pytest.mark.parametrize("url", [
    "http://user:pw@models.example:8080/v1",
    "https://user:pw@models.example/openai/v1?key=pw",
    "http://models.example:8080/v1",
])
def test_model_host_has_neither_credentials_nor_path(url: str) -> None:
    host = load_settings({"base_url": url}).model_host

    assert host.split(":")[0] == "models.example"
    assert "user" not in host and "pw" not in host and "/" not in host


def test_model_host_of_the_default_base_url_is_localhost() -> None:
    assert load_settings({}).model_host.split(":")[0] == "localhost"


# Ordinary job variables that other jobs of a pipeline commonly set: none may configure us.
BARE_NAMES = sorted({name.upper() for name in Settings.model_fields} | {
    "MODEL", "TOKEN", "API_KEY", "PROJECT", "BASE_URL", "MR", "OUTPUT", "SPEC", "TIMEOUT"})


def test_bare_field_names_in_the_environment_change_nothing(
        monkeypatch: pytest.MonkeyPatch) -> None:
    for name in BARE_NAMES:
        monkeypatch.setenv(name, "wrong")
        monkeypatch.setenv(name.lower(), "wrong")
    monkeypatch.setenv("REVIEWER_MODEL", "qwen2.5-coder:32b")
    monkeypatch.setenv("REVIEWER_GITLAB_TOKEN", "glpat-right")
    monkeypatch.setenv("REVIEWER_API_KEY", "sk-right")

    settings = load_settings({})

    assert settings.model == "qwen2.5-coder:32b"
    assert reveal(settings.token) == "glpat-right"
    assert reveal(settings.api_key) == "sk-right"
    assert settings.project is None and settings.mr is None
    defaults = load_settings({})
    for name in Settings.model_fields:
        if name not in ("model", "token", "api_key"):
            assert getattr(settings, name) == getattr(defaults, name), name


def test_bare_names_reach_no_real_run(tmp_path: Path) -> None:
    env = clean_env(MODEL="wrong-model", TOKEN="glpat-wrong", API_KEY="sk-wrong",
                    PROJECT="wrong/project", BASE_URL="http://wrong.invalid/v1",
                    REVIEWER_BASE_URL="localhost:11434")

    result = run_cli("review", "--local", "--repo", str(tmp_path), env=env)

    # The documented variable is the one read (and found malformed); no bare name is.
    assert result.code == 2
    assert "REVIEWER_BASE_URL" in result.stderr and "wrong" not in result.stderr


@pytest.mark.parametrize("url", ["localhost:11434", "localhost:11434/v1", "ollama", "//host/v1",
                                 "ftp://host/v1", "http:///v1"])
@pytest.mark.parametrize("source", ["flag", "REVIEWER_BASE_URL", "OPENAI_BASE_URL"])
def test_a_base_url_without_scheme_and_host_is_a_usage_error_showing_the_form(
        url: str, source: str, tmp_path: Path) -> None:
    env = clean_env(**({source: url} if source != "flag" else {}))
    args = ("--base-url", url) if source == "flag" else ()

    result = run_cli("review", "--local", "--repo", str(tmp_path), *args, env=env)

    assert result.code == 2
    assert result.stderr.count("\n") == 1
    assert "http://localhost:11434/v1" in result.stderr and "Traceback" not in result.stderr


def test_a_gitlab_url_without_scheme_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match=re.escape("https://gitlab.example.com")):
        load_settings({"gitlab_url": "gitlab.example.com"})


@pytest.mark.parametrize(("raw", "seconds"), [("90", 90.0), ("90s", 90.0), ("30m", 1800.0),
                                              ("1h", 3600.0), ("1.5m", 90.0)])
def test_deadline_and_timeout_read_durations_as_gitlab_writes_them(
        monkeypatch: pytest.MonkeyPatch, raw: str, seconds: float) -> None:
    monkeypatch.setenv("REVIEWER_DEADLINE", raw)
    assert load_settings({}).deadline == seconds
    assert load_settings({"timeout": raw}).timeout == seconds


@pytest.mark.parametrize("raw", ["soon", "-5", "0", "5x"])
def test_a_duration_that_is_not_one_is_a_usage_error(raw: str) -> None:
    with pytest.raises(UsageError, match="--deadline"):
        load_settings({"deadline": raw})


def test_retries_redaction_and_deadline_defaults() -> None:
    settings = load_settings({})
    assert (settings.retries, settings.redact, settings.deadline) == (3, True, None)


def test_origin_names_the_flag_or_the_variable_that_set_a_value(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITLAB_TOKEN", "glpat-from-gitlab-token")
    monkeypatch.setenv("CI_MERGE_REQUEST_PROJECT_ID", "42")
    monkeypatch.setenv("CI_PROJECT_ID", "7")

    settings = load_settings({"mr": 5})

    assert settings.origin("token") == "GITLAB_TOKEN"
    assert settings.origin("project") == "CI_MERGE_REQUEST_PROJECT_ID"
    assert settings.origin("mr") == "--mr"
    assert settings.origin("api_key") == "default"
