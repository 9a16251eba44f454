"""The team's review rules: Markdown with YAML front matter, from a directory or a git URL."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import pathspec
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from reviewer.config import Settings, reveal
from reviewer.errors import SpecError
from reviewer.model import Severity
from reviewer.spec_git import Credential, clone_credential, cloned, commit_of, strip_userinfo
from reviewer.text import BOM, clean, decode

RULE_ID = r"^[A-Z][A-Z0-9]*-\d{3}$"
# A spec is a folder of short Markdown files; beyond these it is a wrong path or an attack
# (a huge file in every prompt, a repository walked for minutes).
MAX_RULE_FILES = 500
MAX_RULE_FILE_BYTES = 256 * 1024
EVERY_PATH = frozenset({"**", "*", "**/*", "/**"})
SCP_URL = re.compile(r"^[\w.-]+@[\w.-]+:(?!//)")  # git@host:group/spec.git


class RuleHeader(BaseModel):
    """A rule's front matter, as a team writes it."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=RULE_ID)
    title: str = Field(min_length=1)
    severity: Severity
    paths: list[str] = Field(default_factory=lambda: ["**"])

    @field_validator("paths", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    severity: Severity
    paths: tuple[str, ...]
    body: str
    file: str
    line: int

    @cached_property
    def _globs(self) -> pathspec.GitIgnoreSpec:
        return pathspec.GitIgnoreSpec.from_lines(self.paths)

    def applies_to(self, path: str) -> bool:
        """True when one of the rule's globs matches path (gitignore-style)."""
        return self._globs.match_file(path)

    @property
    def everywhere(self) -> bool:
        """True when a glob matches every path ("**", "*", "**/*" in gitignore syntax)."""
        return any(glob.strip() in EVERY_PATH for glob in self.paths)


@dataclass(frozen=True)
class Spec:
    source: str
    ref: str | None
    commit: str | None
    rules: tuple[Rule, ...]

    def rules_for(self, paths: Iterable[str]) -> tuple[Rule, ...]:
        """The rules that apply to any of the paths, in spec order."""
        wanted = list(paths)
        return tuple(r for r in self.rules if any(r.applies_to(p) for p in wanted))


def parse_rules(text: str, file: str) -> list[Rule]:
    """Parse one rule file: one or more front-matter blocks, each followed by its body.

    A byte-order mark and CRLF or CR line ends are accepted (editors on Windows write them).
    Raises SpecError naming file and line.
    """
    lines = text.removeprefix(BOM).splitlines()
    if not lines or lines[0].strip() != "---":
        raise SpecError(f"{file}:1: a rule file must start with a '---' front-matter line")
    fences = [i for i, ln in enumerate(lines) if ln.rstrip() == "---"]
    if len(fences) % 2:
        raise SpecError(f"{file}:{fences[-1] + 1}: front matter opened here is never closed "
                        "(a body may not contain a line of just '---'; use '***')")
    rules = []
    for n in range(0, len(fences), 2):
        start, end = fences[n], fences[n + 1]
        body_end = fences[n + 2] if n + 2 < len(fences) else len(lines)
        header = _header("\n".join(lines[start + 1:end]), file, start + 1)
        body = "\n".join(lines[end + 1:body_end]).strip()
        if not body:
            raise SpecError(f"{file}:{end + 1}: rule {header.id} has no text after its "
                            "front matter")
        rules.append(Rule(header.id, header.title, header.severity, tuple(header.paths), body,
                          file, start + 1))
    return rules


def _header(text: str, file: str, line: int) -> RuleHeader:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = line + 1 + mark.line if mark else line
        raise SpecError(f"{file}:{at}: invalid YAML front matter: "
                        f"{getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, dict):
        raise SpecError(f"{file}:{line}: front matter must be a YAML mapping (id, title, ...)")
    try:
        return RuleHeader.model_validate(data)
    except ValidationError as exc:
        # A misspelt key ("severty") also leaves the real one missing: name the typo, its cause.
        err = next((e for e in exc.errors() if e["type"] == "extra_forbidden"), exc.errors()[0])
        key = ".".join(str(p) for p in err["loc"]) or "front matter"
        at = line + next((i + 1 for i, ln in enumerate(text.splitlines())
                          if ln.startswith(f"{err['loc'][0]}:")), 0) if err["loc"] else line
        raise SpecError(f"{file}:{at}: {key}: {err['msg']}") from None


def load_dir(root: Path, source: str, ref: str | None = None, commit: str | None = None, *,
             in_git: bool = True) -> Spec:
    """Load and validate every rule file under root (README.md files are documentation).

    commit: the spec's commit; when None and in_git, that of the checkout root is in, if any.

    Files are read as text.decode reads bytes: UTF-8 (with or without a byte-order mark), else
    legacy single-byte text, so a rule saved by any editor loads. A spec over the limits
    (MAX_RULE_FILES files, MAX_RULE_FILE_BYTES per file) is refused. Raises SpecError.
    """
    if root.is_file():
        raise SpecError(f"spec {source} is a file: pass the folder that holds the rules")
    if not root.is_dir():
        raise SpecError(f"spec directory {source} does not exist")
    paths = sorted(_rule_paths(root, source))
    files = {}
    for path in paths:
        check_size(clean(path.relative_to(root).as_posix()), path.stat().st_size)
        files[clean(path.relative_to(root).as_posix())] = path.read_bytes()
    return load_files(files, source, ref, commit or (commit_of(root) if in_git else None))


def _rule_paths(root: Path, source: str) -> Iterator[Path]:
    found = 0
    for path in root.rglob("*.md"):
        if path.name.lower() == "readme.md" or ".git" in path.relative_to(root).parts:
            continue
        found += 1
        check_count(source, found)
        yield path


def check_count(source: str, count: int) -> None:
    """Refuse a spec with more than MAX_RULE_FILES rule files (a wrong URL or folder)."""
    if count > MAX_RULE_FILES:
        raise SpecError(f"spec {source} has more than {MAX_RULE_FILES} rule files: point "
                        "--spec/--spec-dir at the folder of the rules only")


def check_size(file: str, size: int) -> None:
    """Refuse a rule file over MAX_RULE_FILE_BYTES (rules are read by people and models)."""
    if size > MAX_RULE_FILE_BYTES:
        raise SpecError(f"{file}: {size:,} bytes, over the {MAX_RULE_FILE_BYTES:,}-byte limit "
                        "of a rule file: split it or shorten it")


def load_files(files: Mapping[str, bytes], source: str, ref: str | None,
               commit: str | None) -> Spec:
    """A spec from rule files given as {relative path: bytes} (a folder, a clone, GitLab).

    README.md files are skipped; ids must be unique. Raises SpecError naming file and line.
    """
    rules: list[Rule] = []
    seen: dict[str, str] = {}
    for rel in sorted(files):
        if rel.rsplit("/", 1)[-1].lower() == "readme.md":
            continue
        for rule in parse_rules(decode(files[rel]), rel):
            if rule.id in seen:
                raise SpecError(f"{rel}:{rule.line}: rule id {rule.id} is already used in "
                                f"{seen[rule.id]}")
            seen[rule.id] = f"{rel}:{rule.line}"
            rules.append(rule)
    if not rules:
        raise SpecError(f"spec {source} has no rules (*.md files with front matter)")
    return Spec(source, ref, commit, tuple(rules))


def is_url(source: str) -> bool:
    """True for what git clones: scheme://... or scp-like user@host:path."""
    return "://" in source or bool(SCP_URL.match(source))


def bundled_dir() -> Path:
    """The default rules: inside the installed package, or at the top of a checkout."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "_spec", here.parent / "spec"):
        if candidate.is_dir():
            return candidate
    raise SpecError("the bundled spec is missing from this installation: pass --spec")


def from_settings(settings: Settings) -> Spec:
    """The rules a run uses, cloned with the right credential when the spec is a URL."""
    if settings.spec_ref and settings.spec and not is_url(settings.spec):
        raise SpecError("--spec-ref applies to a git URL, but --spec is a directory")
    return load(settings.spec, settings.spec_ref, settings.spec_dir, _credential_for(settings))


@contextmanager
def local_copy(settings: Settings) -> Iterator[tuple[Spec, Settings]]:
    """The rules of settings, and settings that read the same rules from disk while the block
    runs: a spec URL is cloned once for many runs (reviewer eval), not once per run."""
    source = settings.spec
    if source is None or not is_url(source):
        yield from_settings(settings), settings
        return
    with cloned(source, settings.spec_ref, _credential_for(settings)(source)) as path:
        rules = load_dir(path / (settings.spec_dir or ""), strip_userinfo(source),
                         settings.spec_ref, commit_of(path))
        yield rules, settings.model_copy(update={"spec": str(path), "spec_ref": None})


def _credential_for(settings: Settings) -> Callable[[str], Credential | None]:
    def credential(url: str) -> Credential | None:
        return clone_credential(url, reveal(settings.spec_token), reveal(settings.ci_job_token),
                                settings.ci_server_host)
    return credential


def load(source: str | None, ref: str | None, subdir: str | None,
         credential_for: Callable[[str], Credential | None]) -> Spec:
    """Load the spec a run asks for: bundled, a directory, or a git URL cloned at ref."""
    if source is None:
        # The bundled rules are versioned with the tool, not with whatever git checkout the
        # package sits in: a virtualenv inside the reviewed project would give them the MR's
        # head as commit, a new one on every push (and --incremental would start over).
        return load_dir(bundled_dir() / (subdir or ""), "bundled", in_git=False)
    if not is_url(source):
        return load_dir(Path(source) / (subdir or ""), source, ref)
    with cloned(source, ref, credential_for(source)) as path:
        return load_dir(path / (subdir or ""), strip_userinfo(source), ref, commit_of(path))
