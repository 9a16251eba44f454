"""Settings, read once: flags > REVIEWER_* > GitLab's CI_* > defaults."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import unquote, urlsplit

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from reviewer.errors import UsageError
from reviewer.model import Severity

DEFAULT_BASE_URL = "http://localhost:11434/v1"
DEFAULT_MODEL = "qwen2.5-coder:7b"
EXAMPLE_URLS = {"base_url": "http://localhost:11434/v1", "gitlab_url": "https://gitlab.example.com"}
DURATION_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}
MANUAL_SOURCES = frozenset({"web", "api", "trigger", "pipeline", "schedule", "chat"})


def _env(*names: str) -> Any:
    return AliasChoices(*names)


class Settings(BaseSettings):
    """Every option of a run; built once in cli.py and passed down."""

    # No populate_by_name: pydantic-settings would then read a bare MODEL, TOKEN or PROJECT from
    # the environment too. Flags are passed under each field's first alias instead.
    model_config = SettingsConfigDict(extra="ignore", frozen=True, env_ignore_empty=True)

    gitlab_url: str | None = Field(None, validation_alias=_env(
        "REVIEWER_GITLAB_URL", "CI_SERVER_URL"))
    token: SecretStr | None = Field(None, validation_alias=_env(
        "REVIEWER_GITLAB_TOKEN", "GITLAB_TOKEN"))
    project: str | None = Field(None, validation_alias=_env(
        "REVIEWER_PROJECT", "CI_MERGE_REQUEST_PROJECT_ID", "CI_PROJECT_ID"))
    mr: int | None = Field(None, validation_alias=_env("REVIEWER_MR_IID", "CI_MERGE_REQUEST_IID"))
    mr_url: str | None = Field(None, validation_alias=_env("REVIEWER_MR_URL"))
    max_file_bytes: int = Field(1_000_000, ge=0, validation_alias=_env(
        "REVIEWER_MAX_FILE_BYTES"))

    base_url: str = Field(DEFAULT_BASE_URL, validation_alias=_env(
        "REVIEWER_BASE_URL", "OPENAI_BASE_URL"))
    api_key: SecretStr | None = Field(None, validation_alias=_env(
        "REVIEWER_API_KEY", "OPENAI_API_KEY"))
    model: str = Field(DEFAULT_MODEL, validation_alias=_env("REVIEWER_MODEL"))
    max_output_tokens: int = Field(2048, gt=0, validation_alias=_env(
        "REVIEWER_MAX_OUTPUT_TOKENS"))
    max_input_tokens: int = Field(6000, ge=500, validation_alias=_env(
        "REVIEWER_MAX_INPUT_TOKENS"))
    timeout: float = Field(300.0, gt=0, validation_alias=_env("REVIEWER_TIMEOUT"))
    retries: int = Field(3, ge=0, le=10, validation_alias=_env("REVIEWER_RETRIES"))
    concurrency: int = Field(4, ge=1, le=64, validation_alias=_env("REVIEWER_CONCURRENCY"))
    deadline: float | None = Field(None, gt=0, validation_alias=_env("REVIEWER_DEADLINE"))
    redact: bool = Field(True, validation_alias=_env("REVIEWER_REDACT"))

    spec: str | None = Field(None, validation_alias=_env("REVIEWER_SPEC"))
    spec_ref: str | None = Field(None, validation_alias=_env("REVIEWER_SPEC_REF"))
    spec_dir: str | None = Field(None, validation_alias=_env("REVIEWER_SPEC_DIR"))
    spec_token: SecretStr | None = Field(None, validation_alias=_env("REVIEWER_SPEC_TOKEN"))
    exclude: Annotated[tuple[str, ...], NoDecode] = Field((), validation_alias=_env(
        "REVIEWER_EXCLUDE"))

    output: Path = Field(Path("review.json"), validation_alias=_env("REVIEWER_OUTPUT"))
    dry_run: bool = Field(False, validation_alias=_env("REVIEWER_DRY_RUN"))
    fail_under: int | None = Field(None, ge=0, le=100, validation_alias=_env(
        "REVIEWER_FAIL_UNDER"))
    fail_on: Severity | None = Field(None, validation_alias=_env("REVIEWER_FAIL_ON"))
    allow_incomplete: bool = Field(False, validation_alias=_env("REVIEWER_ALLOW_INCOMPLETE"))

    inline: bool = Field(True, validation_alias=_env("REVIEWER_INLINE"))
    incremental: bool | None = Field(None, validation_alias=_env("REVIEWER_INCREMENTAL"))
    max_inline: int = Field(20, ge=0, validation_alias=_env("REVIEWER_MAX_INLINE"))
    codequality: Path | None = Field(None, validation_alias=_env("REVIEWER_CODEQUALITY"))

    local: bool = Field(False, validation_alias=_env("REVIEWER_LOCAL"))
    base: str | None = Field(None, validation_alias=_env("REVIEWER_BASE"))
    head: str | None = Field(None, validation_alias=_env("REVIEWER_HEAD"))
    repo: Path = Field(Path(), validation_alias=_env("REVIEWER_REPO"))
    diff: str | None = Field(None, validation_alias=_env("REVIEWER_DIFF"))
    verbose: bool = Field(False, validation_alias=_env("REVIEWER_VERBOSE"))
    quiet: bool = Field(False, validation_alias=_env("REVIEWER_QUIET"))

    # GitLab's predefined variables: read, never set by flags.
    ci_pipeline_source: str | None = Field(None, validation_alias="CI_PIPELINE_SOURCE")
    ci_commit_ref_name: str | None = Field(None, validation_alias="CI_COMMIT_REF_NAME")
    ci_job_token: SecretStr | None = Field(None, validation_alias="CI_JOB_TOKEN")
    ci_server_host: str | None = Field(None, validation_alias="CI_SERVER_HOST")
    ci_job_url: str | None = Field(None, validation_alias="CI_JOB_URL")
    ci_project_dir: Path | None = Field(None, validation_alias="CI_PROJECT_DIR")
    # A job with `parallel: N` (reviewer eval run --shard's default); read as text, checked
    # where it is used, so that no other command depends on it.
    ci_node_index: str | None = Field(None, validation_alias="CI_NODE_INDEX")
    ci_node_total: str | None = Field(None, validation_alias="CI_NODE_TOTAL")
    # Read as text: other CI systems set CI to values of their own (CI=woodpecker).
    ci: str | None = Field(None, validation_alias="CI")
    gitlab_ci: str | None = Field(None, validation_alias="GITLAB_CI")

    @field_validator("exclude", mode="before")
    @classmethod
    def _split_globs(cls, value: Any) -> Any:
        # One glob per flag, or a comma/newline separated list in the environment.
        if isinstance(value, str):
            value = [value]
        if isinstance(value, list | tuple):
            return tuple(g.strip() for item in value for g in str(item).replace("\n", ",")
                         .split(",") if g.strip())
        return value

    @field_validator("base_url", "gitlab_url")
    @classmethod
    def _http_url(cls, value: str | None, info: ValidationInfo) -> str | None:
        # Without a scheme, "localhost:11434" parses as scheme "localhost" and no host: the
        # client then waits and fails far from the cause.
        if value is None:
            return None
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            example = EXAMPLE_URLS[str(info.field_name)]
            raise ValueError(f"{value!r} is not an http(s) URL with a host; expected a form like "
                             f"{example}")
        return value.strip()

    @field_validator("deadline", "timeout", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        # "90", "90s", "30m", "1h": a job's timeout is written like that in GitLab.
        if isinstance(value, str):
            text = value.strip().lower()
            unit = DURATION_UNITS.get(text[-1:]) if text else None
            if unit:
                return float(text[:-1]) * unit if text[:-1].replace(".", "", 1).isdigit() \
                    else value
        return value

    @field_validator("fail_on", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @property
    def model_host(self) -> str:
        """Host (and port) of the model server, without credentials or path."""
        parts = urlsplit(self.base_url)
        if not parts.hostname:
            return "unknown host"
        return f"{parts.hostname}:{parts.port}" if parts.port else parts.hostname

    @property
    def artifact(self) -> str:
        """Where a reader finds review.json: the job's artifact link in CI, else its path."""
        if self.ci_job_url and not self.output.is_absolute():
            return f"[{self.output.as_posix()}]({self.ci_job_url}/artifacts/file/" \
                   f"{self.output.as_posix()})"
        return f"`{self.output.as_posix()}`"

    @property
    def incremental_on(self) -> bool:
        """Build on the earlier review of the merge request (--incremental): as set, else on
        in CI, where every push runs a review; --full turns it off."""
        return self.incremental if self.incremental is not None else self.in_ci

    @property
    def in_gitlab_ci(self) -> bool:
        """A GitLab CI job (GITLAB_CI=true): its log takes collapsible sections."""
        return (self.gitlab_ci or "").strip().lower() == "true"

    @property
    def in_ci(self) -> bool:
        """A CI job of any kind (CI set to anything but false or 0, or GitLab's): its output
        is a log that people read later."""
        return self.in_gitlab_ci or (self.ci or "").strip().lower() not in ("", "false", "0")

    def origin(self, field: str) -> str:
        """Where a field's value came from, for messages: its flag or the variable that set it
        (the first documented variable holding the value in use), or "default"."""
        value = getattr(self, field)
        value = value.get_secret_value() if isinstance(value, SecretStr) else value
        if value is None:
            return "default"
        info = Settings.model_fields[field]
        for name in getattr(info.validation_alias, "choices", ()):
            if os.environ.get(str(name), "").strip() == str(value):
                return str(name)
        return f"--{field.replace('_', '-')}"

    def secrets(self) -> list[str]:
        """Every secret value in use, for redaction of anything printed."""
        found = [s.get_secret_value() for s in
                 (self.token, self.api_key, self.spec_token, self.ci_job_token) if s]
        # A password written into a URL (https://user:pass@host) is a secret too; so is the
        # URL-encoded form a library may print.
        for url in (self.gitlab_url, self.base_url, self.spec, self.mr_url):
            password = urlsplit(url).password if url and "://" in url else None
            if password:
                found += [password, unquote(password)]
        return sorted({s for s in found if len(s) >= 4}, key=len, reverse=True)


def reveal(secret: SecretStr | None) -> str | None:
    """A secret's value, at the one place it is handed to a client."""
    return secret.get_secret_value() if secret is not None else None


def load_settings(flags: dict[str, Any]) -> Settings:
    """Build Settings from the flags that were given, the environment and defaults."""
    given = {_flag_key(k): v for k, v in flags.items() if v is not None and v != ()}
    try:
        return Settings(**given)
    except ValidationError as exc:
        err = exc.errors()[0]
        name = str(err["loc"][0]) if err["loc"] else "settings"
        message = str(err["msg"]).removeprefix("Value error, ")  # pydantic's wrapping
        raise UsageError(f"invalid {_names(name)}: {message}") from None


def _flag_key(field: str) -> str:
    """The key a flag's value is passed under: the field's first alias (REVIEWER_...)."""
    alias = Settings.model_fields[field].validation_alias
    choices = getattr(alias, "choices", None)
    return str(choices[0]) if choices else str(alias or field)


def _names(key: str) -> str:
    """How a user sets a field (given by name or by alias): its flag and environment variables."""
    field = next((name for name, info in Settings.model_fields.items()
                  if key == name or key in getattr(info.validation_alias, "choices", ())), key)
    info = Settings.model_fields.get(field)
    alias = info.validation_alias if info else None
    names = [str(a) for a in getattr(alias, "choices", [])]
    return " / ".join([f"--{field.replace('_', '-')}", *names])
