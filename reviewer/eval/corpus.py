"""The eval corpus on disk: CORPUS/cases/<id>/{meta.yaml, change.diff, expected.yaml}.

Everything read here comes from files anyone can edit, so it is validated by pydantic models
that forbid unknown keys; a mistake is reported with its file and field (UsageError).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, TypeVar

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from reviewer.diff import FileDiff, parse_change
from reviewer.errors import ReviewerError, UsageError
from reviewer.model import Severity
from reviewer.patchfile import read_patch

CASE_ID = r"^[a-z0-9][a-z0-9._-]*$"
M = TypeVar("M", bound=BaseModel)


class Meta(BaseModel):
    """meta.yaml: what the case is."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    title: str = Field(min_length=1)
    description: str = ""
    language: str = Field(min_length=1)
    clean: bool
    tags: tuple[str, ...] = ()

    @field_validator("tags", mode="before")
    @classmethod
    def _none_is_empty(cls, value: object) -> object:
        return () if value is None else value  # `tags:` left empty in YAML is null


class Defect(BaseModel):
    """One problem a good reviewer finds: new-file lines first..last of path."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str = Field(min_length=1)
    lines: tuple[Annotated[int, Field(ge=1)], Annotated[int, Field(ge=1)]]
    rule: str | None = None
    severity: Severity
    what: str = Field(min_length=1)

    @model_validator(mode="after")
    def _ordered(self) -> Defect:
        if self.lines[0] > self.lines[1]:
            raise ValueError(f"lines {list(self.lines)}: the first is after the last")
        return self


class Expected(BaseModel):
    """expected.yaml."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    defects: tuple[Defect, ...] = ()

    @field_validator("defects", mode="before")
    @classmethod
    def _none_is_empty(cls, value: object) -> object:
        return () if value is None else value  # `defects:` left empty in YAML is null


@dataclass(frozen=True)
class Case:
    id: str
    meta: Meta
    defects: tuple[Defect, ...]
    diff: Path  # change.diff, read by `review --diff`'s own path


def load(corpus: Path) -> list[Case]:
    """Every case under corpus/cases (or corpus itself when it is the cases folder), by id."""
    folder = corpus / "cases"
    if not folder.is_dir():
        # The cases folder itself is taken only when it looks like one: any other folder
        # (a project, a typo'd path) would fail on its first subfolder's missing meta.yaml.
        if not any((d / "meta.yaml").is_file() for d in _subfolders(corpus)):
            raise UsageError(f"{corpus} is not an eval corpus: expected a folder holding "
                             "cases/ (see eval/README.md)")
        folder = corpus
    cases = [load_case(d) for d in _subfolders(folder)]
    if not cases:
        raise UsageError(f"{folder} holds no cases (cases/<id>/meta.yaml, change.diff, "
                         "expected.yaml; see eval/README.md)")
    return cases


def _subfolders(folder: Path) -> list[Path]:
    """The folders in folder, by name; a hidden one (.git, .pytest_cache) is no case."""
    if not folder.is_dir():
        return []
    return [d for d in sorted(folder.iterdir()) if d.is_dir() and not d.name.startswith(".")]


def load_case(folder: Path) -> Case:
    """One case folder; UsageError naming the file and field of the first mistake."""
    if not re.match(CASE_ID, folder.name):
        raise UsageError(f"{folder}: a case folder is named in lower case letters, digits, "
                         "'.', '_' and '-' (its name is the case id), e.g. py-off-by-one")
    meta = _model(Meta, folder / "meta.yaml")
    expected = _model(Expected, folder / "expected.yaml")
    if not (folder / "change.diff").is_file():
        raise UsageError(f"{folder}/change.diff is missing")
    if meta.clean and expected.defects:
        raise UsageError(f"{folder.name}: clean: true, but expected.yaml lists defects")
    if not meta.clean and not expected.defects:
        raise UsageError(f"{folder.name}: clean: false, but expected.yaml lists no defects")
    return Case(folder.name, meta, expected.defects, folder / "change.diff")


def problems(case: Case) -> list[str]:
    """What is wrong with a case that loads: a diff that does not parse or holds no file, a
    defect on a file the diff does not change or on a line that is not an added or context
    line of it (no finding could ever match it)."""
    try:  # as `review --diff` reads it: a combined, coloured or repeating diff is refused
        files = {f.path: f for f in map(parse_change, read_patch(str(case.diff)).changes)}
    except ReviewerError as exc:
        return [f"{case.id}: {exc}"]
    found = [] if files else [f"{case.id}: change.diff holds no file changes"]
    for n, defect in enumerate(case.defects):
        where = f"{case.id}: defect {n + 1} ({defect.path}:{defect.lines[0]})"
        file = files.get(defect.path)
        if file is None:
            found.append(f"{where}: change.diff does not change this file")
        elif not _addressable(file, *defect.lines):
            found.append(f"{where}: lines must be added or context lines of the diff")
    return found


def unknown_rules(cases: Iterable[Case], rule_ids: Iterable[str]) -> list[str]:
    """The rules the cases' defects name that the spec does not have, sorted (a corpus
    written for another spec: its rule accuracy cannot be high)."""
    known = set(rule_ids)
    return sorted({d.rule for c in cases for d in c.defects if d.rule and d.rule not in known})


def _addressable(file: FileDiff, first: int, last: int) -> bool:
    return all(file.line_at("new", n) is not None for n in (first, last))


def _model(kind: type[M], path: Path) -> M:
    """The YAML file at path as kind (an empty file is an empty mapping)."""
    data = _yaml(path)
    if data is not None and not isinstance(data, dict):
        raise UsageError(f"{_short(path)}: expected a mapping of keys ({_keys(kind)}), "
                         f"found a {type(data).__name__}")
    try:
        return kind.model_validate(data or {})
    except ValidationError as exc:
        # An unknown key first: a typo (severty) is also a missing key (severity), and only
        # the typo says what to fix.
        errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
        raise UsageError(f"{_short(path)}: {_message(errors[0])}") from None


def _message(err: ErrorDetails) -> str:
    """Where and what, with what is wanted where pydantic's words are about Python types."""
    loc = [str(p) for p in err["loc"]]
    if "lines" in loc and err["type"] in ("tuple_type", "too_short", "too_long", "missing"):
        where = _where(loc[:loc.index("lines") + 1])
        return f"{where}: expected [first, last], e.g. [12, 14] (one line: [12, 12])"
    # pydantic's words for a YAML list are "a valid tuple", and a validator's "Value error, ".
    what = {"extra_forbidden": "unknown key (a typo?)", "tuple_type": "expected a list"}.get(
        err["type"], str(err["msg"]).removeprefix("Value error, "))
    return f"{_where(loc)}: {what}"


def _where(loc: list[str]) -> str:
    """defects.1.severity as problems() words it, "defect 2: severity" (counted from 1); an
    index into lines is left out (lines: [first, last] is named as a whole)."""
    items: list[str] = []
    keys: list[str] = []
    for part in loc:
        if part.isdigit() and keys and keys[-1] in ("defects", "tags"):
            items.append(f"{keys.pop()[:-1]} {int(part) + 1}")
        elif not part.isdigit():
            keys.append(part)
    return ": ".join([*items, ".".join(keys)] if keys else items) or "the file"


def _keys(kind: type[BaseModel]) -> str:
    return ", ".join(kind.model_fields)


def _short(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


def _yaml(path: Path) -> object:
    try:
        return yaml.safe_load(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{path} is missing") from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"{_short(path)} is not UTF-8 text (byte {exc.start}): save it as "
                         "UTF-8") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise UsageError(f"{_short(path)} is not valid YAML{at}: {exc.problem}") from None
    except (OSError, yaml.YAMLError) as exc:
        raise UsageError(f"{_short(path)} cannot be read: {' '.join(str(exc).split())}") \
            from None
