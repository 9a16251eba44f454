"""The CI/CD templates against GitLab's own CI schema, without GitLab.

check-jsonschema ships GitLab's `ci.json` schema (`--builtin-schema vendor.gitlab-ci`). A component
file holds two YAML documents, so each is checked on its own: the `spec:` header as written, and
the job document after `$[[ inputs.NAME ]]` is interpolated the way GitLab does it (a value that is
one whole interpolation takes the input's type, so a boolean input yields a YAML boolean; inside a
longer string it is text). Known-bad variants are validated too, so a check that can no longer fail
is noticed.
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT

COMPONENT = ROOT / "templates" / "review.yml"
CLASSIC = ROOT / "templates" / "classic" / "review.gitlab-ci.yml"
PIPELINE = ROOT / ".gitlab-ci.yml"

# The inputs the CI issue asks the component to offer.
REQUIRED_INPUTS = {"image", "stage", "model", "base_url", "spec", "spec_ref", "fail_under",
                   "fail_on", "exclude", "allow_failure", "when", "extra_args"}
# Every input with a value other than its default, as a team tightening the review would set them.
NON_DEFAULTS: dict[str, Any] = {
    "image": "registry.example.com/tools/reviewer:0.1.0", "stage": "review",
    "job_name": "ai-review", "model": "qwen2.5-coder:32b",
    "base_url": "http://vllm.internal:8000/v1",
    "spec": "https://gitlab.example.com/group/rules.git", "spec_ref": "v2",
    "fail_under": "60", "fail_on": "critical", "exclude": "docs/**,*.md",
    "allow_failure": [4], "when": "manual", "review_drafts": True,
    "manual_pipelines": False, "extra_args": "--max-input-tokens 12000", "deadline": "45m",
    "concurrency": 8, "incremental": "false",
}
BLOCK = re.compile(r"\$\[\[(.*?)\]\]")
INPUT = re.compile(r"\s*inputs\.([A-Za-z0-9_-]+)\s*")
GLOBAL_KEYWORDS = {"default", "include", "stages", "variables", "workflow", "spec", "image",
                   "services", "cache", "before_script", "after_script"}
TYPES: dict[str, type | tuple[type, ...]] = {
    "string": str, "boolean": bool, "number": (int, float), "array": list}


def check_jsonschema(*files: Path) -> dict[str, list[str]]:
    """Validate files against GitLab's CI schema: the errors for each file (none: valid)."""
    proc = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.gitlab-ci",
         "--output-format", "json", *map(str, files)],
        capture_output=True, text=True, timeout=120, check=False)
    assert proc.stdout, f"check-jsonschema printed no report: {proc.stderr}"
    report = json.loads(proc.stdout)
    assert not report.get("parse_errors"), report["parse_errors"]
    errors: dict[str, list[str]] = {str(f): [] for f in files}
    for error in report["errors"]:
        errors[error["filename"]].append(f"{error['path']}: {error['message']}")
    assert (proc.returncode == 0) == (not any(errors.values())), proc.stderr
    return errors


def component_documents(path: Path = COMPONENT) -> tuple[str, str]:
    """The header (`spec:`) and the job document of a component file, as text."""
    text = path.read_text()
    parts = re.split(r"^---[ \t]*$", text, maxsplit=1, flags=re.MULTILINE)
    assert len(parts) == 2, f"{path} has no `---` between the spec header and the jobs"
    assert len(list(yaml.safe_load_all(text))) == 2
    return parts[0], parts[1]


def spec_inputs(path: Path = COMPONENT) -> dict[str, dict[str, Any]]:
    header = yaml.safe_load(component_documents(path)[0])
    assert list(header) == ["spec"], "the header document holds only `spec:`"
    inputs: dict[str, dict[str, Any]] = header["spec"]["inputs"]
    return {name: spec or {} for name, spec in inputs.items()}


def resolve_inputs(declared: dict[str, dict[str, Any]], given: dict[str, Any]) -> dict[str, Any]:
    """The value of every input as GitLab resolves them: given, else the default; typed."""
    unknown = set(given) - set(declared)
    assert not unknown, f"unknown inputs: {sorted(unknown)}"
    values = {}
    for name, spec in declared.items():
        assert name in given or "default" in spec, f"input {name} is required"
        value = given.get(name, spec.get("default"))
        kind = spec.get("type", "string")
        assert isinstance(value, TYPES[kind]), f"input {name}: {value!r} is not a {kind}"
        if kind == "number":
            assert not isinstance(value, bool), f"input {name}: {value!r} is not a number"
        if "options" in spec:
            assert value in spec["options"], f"input {name}: {value!r} not in {spec['options']}"
        values[name] = value
    return values


def interpolate(node: Any, values: dict[str, Any]) -> Any:
    """Replace `$[[ inputs.NAME ]]` in keys and values the way GitLab does."""
    if isinstance(node, dict):
        return {interpolate(k, values): interpolate(v, values) for k, v in node.items()}
    if isinstance(node, list):
        return [interpolate(v, values) for v in node]
    if not isinstance(node, str):
        return node

    def value(block: str) -> Any:
        ref = INPUT.fullmatch(block)
        assert ref, f"unsupported interpolation $[[{block}]]"
        return values[ref.group(1)]

    whole = BLOCK.fullmatch(node)
    if whole:
        return value(whole.group(1))

    def text(match: re.Match[str]) -> str:
        v = value(match.group(1))
        return v if isinstance(v, str) else json.dumps(v)

    return BLOCK.sub(text, node)


def component_jobs(given: dict[str, Any] | None = None) -> dict[str, Any]:
    """The component's job document with the inputs interpolated."""
    values = resolve_inputs(spec_inputs(), given or {})
    jobs = interpolate(yaml.safe_load(component_documents()[1]), values)
    assert "$[[" not in json.dumps(jobs), "an interpolation block was left in the jobs"
    return jobs  # type: ignore[no-any-return]


def only_job(config: dict[str, Any]) -> dict[str, Any]:
    names = [k for k in config if not k.startswith(".") and k not in GLOBAL_KEYWORDS]
    assert len(names) == 1, names
    return config[names[0]]  # type: ignore[no-any-return]


def write_json(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data, indent=1))
    return path


# --- the files as they are -------------------------------------------------------------------


def test_pipeline_and_classic_template_validate_against_gitlab_schema() -> None:
    errors = check_jsonschema(PIPELINE, CLASSIC)
    assert errors == {str(PIPELINE): [], str(CLASSIC): []}


def test_component_spec_header_validates_against_gitlab_schema(tmp_path: Path) -> None:
    header = tmp_path / "header.yml"
    header.write_text(component_documents()[0])

    assert check_jsonschema(header) == {str(header): []}


@pytest.mark.parametrize("given", [{}, NON_DEFAULTS], ids=["defaults", "non-defaults"])
def test_component_job_validates_against_gitlab_schema_after_interpolation(
        given: dict[str, Any], tmp_path: Path) -> None:
    jobs = component_jobs(given)
    path = write_json(tmp_path / "jobs.json", jobs)

    assert check_jsonschema(path) == {str(path): []}
    name = given.get("job_name", "reviewer")
    assert list(jobs) == [name]
    job = jobs[name]
    assert job["stage"] == given.get("stage", "test")
    # Could not review (1) and incomplete (4) warn by default; a failing gate (3) blocks.
    assert job["allow_failure"] == {"exit_codes": given.get("allow_failure", [1, 4])}
    # Boolean inputs reach variables as text, never as a YAML boolean (refused by some GitLab).
    drafts = "true" if given.get("review_drafts", False) else "false"
    assert job["variables"]["REVIEWER_INPUT_DRAFTS"] == f"drafts-{drafts}"
    assert {r.get("when") for r in job["rules"][2:]} == {given.get("when", "on_success")}
    assert job["variables"]["REVIEWER_FAIL_ON"] == given.get("fail_on", "")
    assert job["variables"]["REVIEWER_DEADLINE"] == given.get("deadline", "30m")
    assert job["variables"]["REVIEWER_CONCURRENCY"] == given.get("concurrency", 4)
    assert job["variables"]["REVIEWER_INCREMENTAL"] == given.get("incremental", "true")
    assert job["script"][-1].split() == ["reviewer", "review",
                                         *given.get("extra_args", "").split()]


def test_every_input_used_in_the_job_is_declared_and_every_declared_input_is_used() -> None:
    blocks = BLOCK.findall(component_documents()[1])
    used = set()
    for block in blocks:
        ref = INPUT.fullmatch(block)
        assert ref, f"unsupported interpolation $[[{block}]]"
        used.add(ref.group(1))

    declared = set(spec_inputs())
    assert used - declared == set(), "used but not declared"
    assert declared - used == set(), "declared but never used"


def test_component_offers_the_inputs_the_issue_requires_with_descriptions() -> None:
    declared = spec_inputs()

    assert REQUIRED_INPUTS - set(declared) == set(), "missing inputs"
    assert all(spec.get("description") for spec in declared.values())
    assert all("default" in spec for spec in declared.values()), "every input is optional"


def test_component_constrains_the_inputs_gitlab_can_check() -> None:
    declared = spec_inputs()

    for name in ("review_drafts", "manual_pipelines"):
        assert declared[name].get("type") == "boolean", name
    assert declared["allow_failure"]["type"] == "array"
    assert set(declared["when"]["options"]) == {"on_success", "manual"}
    assert set(declared["fail_on"]["options"]) == {"", "info", "minor", "major", "critical",
                                                   "blocker"}
    with pytest.raises(AssertionError, match="not in"):
        resolve_inputs(declared, {"fail_on": "severe"})
    with pytest.raises(AssertionError, match="is not a boolean"):
        resolve_inputs(declared, {"review_drafts": "maybe"})
    with pytest.raises(AssertionError, match="is not a array"):
        resolve_inputs(declared, {"allow_failure": True})


@pytest.mark.parametrize("source", ["component", "classic"])
def test_review_job_is_interruptible_serialised_and_keeps_review_json(source: str) -> None:
    if source == "component":
        job = only_job(component_jobs())
    else:
        job = only_job(yaml.safe_load(CLASSIC.read_text()))

    assert job["interruptible"] is True
    assert "$CI_COMMIT_REF_SLUG" in job["resource_group"]
    assert job["image"]["entrypoint"] == [""]
    assert job["artifacts"]["when"] == "always"
    assert "review.json" in job["artifacts"]["paths"]
    # Findings show in the merge request widget through the Code Quality report.
    assert job["variables"]["REVIEWER_CODEQUALITY"] == "gl-code-quality-report.json"
    assert job["artifacts"]["reports"]["codequality"] == "gl-code-quality-report.json"
    assert job["variables"]["REVIEWER_OUTPUT"] == "review.json"
    assert "REVIEWER_GITLAB_TOKEN is not set" in job["script"][0]


@pytest.mark.parametrize("source", ["component", "classic", "pipeline"])
def test_stages_are_literal_because_gitlab_does_not_expand_variables_there(source: str) -> None:
    if source == "component":
        config = component_jobs()
    else:
        config = yaml.safe_load((CLASSIC if source == "classic" else PIPELINE).read_text())
    stages = {name: job["stage"] for name, job in config.items()
              if isinstance(job, dict) and "stage" in job}

    assert stages
    assert {name: stage for name, stage in stages.items() if "$" in stage} == {}


# --- the check can fail ----------------------------------------------------------------------


def _rule_when(job: dict[str, Any]) -> None:
    job["rules"][2]["when"] = "sometimes"


def _job_when(job: dict[str, Any]) -> None:
    job["when"] = "sometimes"


def _allow_failure(job: dict[str, Any]) -> None:
    job["allow_failure"] = "maybe"


def _misspelt_script(job: dict[str, Any]) -> None:
    job["scirpt"] = job.pop("script")


def _artifacts_when(job: dict[str, Any]) -> None:
    job["artifacts"]["when"] = "sometimes"


def _interruptible_text(job: dict[str, Any]) -> None:
    job["interruptible"] = "yes"


@pytest.mark.parametrize("break_job", [_rule_when, _job_when, _allow_failure, _misspelt_script,
                                       _artifacts_when, _interruptible_text],
                         ids=lambda f: f.__name__.strip("_"))
def test_broken_job_fails_validation(break_job: Callable[[dict[str, Any]], None],
                                     tmp_path: Path) -> None:
    jobs = copy.deepcopy(component_jobs())
    break_job(jobs["reviewer"])
    path = write_json(tmp_path / "jobs.json", jobs)

    errors = check_jsonschema(path)[str(path)]
    assert errors, f"{break_job.__name__} passed validation"
    assert all(e.startswith("$.reviewer") for e in errors), errors


@pytest.mark.parametrize(("field", "value"), [("type", "integer"), ("options", "manual"),
                                              ("description", 42)])
def test_broken_component_input_fails_validation(field: str, value: Any,
                                                 tmp_path: Path) -> None:
    header = yaml.safe_load(component_documents()[0])
    header["spec"]["inputs"]["fail_under"][field] = value
    path = write_json(tmp_path / "header.json", header)

    errors = check_jsonschema(path)[str(path)]
    assert errors, f"an input with {field}: {value!r} passed validation"


def test_unknown_top_level_keyword_in_the_classic_template_fails_validation(
        tmp_path: Path) -> None:
    template = yaml.safe_load(CLASSIC.read_text())
    template["reviewer"]["rulez"] = template["reviewer"].pop("rules")
    path = write_json(tmp_path / "classic.json", template)

    assert check_jsonschema(path)[str(path)]
