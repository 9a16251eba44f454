"""The GitLab Code Quality report: every finding, in the format GitLab's widget reads."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from reviewer.check import place
from reviewer.diff import Change, FileDiff, parse_change
from reviewer.model import Finding, PlacedFinding, Review
from reviewer.publish import codequality
from tests.conftest import answer, finding, review_of, run_cli
from tests.openai_standin import FakeOpenAI

# GitLab's Code Quality report (Code Climate format), as much of it as GitLab reads.
ENTRY: dict[str, Any] = {
    "type": "object",
    "required": ["description", "check_name", "fingerprint", "severity", "location"],
    "properties": {
        "description": {"type": "string"},
        "check_name": {"type": "string"},
        "fingerprint": {"type": "string"},
        "severity": {"enum": ["info", "minor", "major", "critical", "blocker"]},
        "location": {
            "type": "object",
            "required": ["path", "lines"],
            "properties": {
                "path": {"type": "string"},
                "lines": {
                    "type": "object",
                    "required": ["begin"],
                    "properties": {"begin": {"type": "integer", "minimum": 1}},
                },
            },
        },
    },
}
REPORT: dict[str, Any] = {"$schema": "https://json-schema.org/draft/2020-12/schema",
                          "type": "array", "items": ENTRY}
VALIDATOR = jsonschema.Draft202012Validator(REPORT)

APP = "\n".join(["@@ -1,3 +1,4 @@", " import os", "-import sys", "+import re", "+import json",
                 " x = 1", ""])


def app() -> FileDiff:
    return parse_change(Change("app.py", "app.py", APP))


def placed(line: int, **extra: Any) -> PlacedFinding:
    return place(Finding.model_validate(finding("app.py", line, **extra)), {"app.py": app()})




def assert_valid(report: object) -> None:
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in VALIDATOR.iter_errors(report)]
    assert errors == [], errors


def test_the_schema_is_a_valid_json_schema_that_rejects_what_gitlab_rejects() -> None:
    jsonschema.Draft202012Validator.check_schema(REPORT)
    good = {"description": "d", "check_name": "c", "fingerprint": "f", "severity": "minor",
            "location": {"path": "a.py", "lines": {"begin": 1}}}
    assert_valid([good])
    for bad in ({**good, "severity": "warning"}, {**good, "fingerprint": 1},
                {k: v for k, v in good.items() if k != "check_name"},
                {**good, "location": {"path": "a.py", "lines": {"begin": 0}}},
                {**good, "location": {"path": "a.py", "lines": {"begin": "1"}}},
                {**good, "location": {"path": "a.py"}}):
        assert not VALIDATOR.is_valid([bad]), bad


def test_every_finding_placed_or_not_becomes_a_valid_entry() -> None:
    findings = [
        placed(2, severity="blocker", rule="SEC-001", title="Unsafe", message="Use the safe API."),
        placed(3, severity="critical", rule=None, title="No rule"),
        placed(2, side="old", severity="major", title="Removed import"),
        placed(4, severity="minor", title="Context line"),
        placed(40, severity="info", title="Beyond the diff"),
        place(Finding.model_validate(finding("ghost.py", 7, title="Invented file")),
              {"app.py": app()}),
    ]
    assert [f.placed for f in findings] == [True, True, True, True, False, False]

    report = codequality(review_of(findings))

    assert_valid(report)
    assert len(report) == len(findings)
    assert [(e["location"]["path"], e["location"]["lines"]["begin"], e["severity"])
            for e in report] == [("app.py", 2, "blocker"), ("app.py", 3, "critical"),
                                 ("app.py", 2, "major"), ("app.py", 4, "minor"),
                                 ("app.py", 40, "info"), ("ghost.py", 7, "major")]
    assert report[0]["description"] == "Unsafe: Use the safe API."
    assert [e["fingerprint"] for e in report] == [f.fingerprint for f in findings]


def test_check_name_is_the_rule_id_or_reviewer() -> None:
    report = codequality(review_of([placed(2, rule="SEC-001"), placed(3, rule=None)]))
    assert [e["check_name"] for e in report] == ["SEC-001", "reviewer"]


def test_a_review_without_findings_gives_an_empty_report() -> None:
    report = codequality(review_of([]))
    assert report == []
    assert_valid(report)


@pytest.mark.parametrize("line", [0, -3])
def test_a_line_number_below_one_from_the_model_still_makes_a_valid_entry(line: int) -> None:
    # The model's answer is parsed leniently: a line 0 finding is kept, unplaced.
    f = placed(line, title="Somewhere")
    assert not f.placed
    report = codequality(review_of([f]))
    assert_valid(report)
    assert report[0]["location"]["lines"]["begin"] == 1


def test_findings_that_share_a_fingerprint_get_distinct_ones() -> None:
    # Same rule, same line: one finding to the inline thread (said in two ways), two entries
    # to GitLab, which keeps one entry per fingerprint.
    a = placed(2, rule="COR-001", title="Shadows a module", severity="major")
    b = placed(2, rule="COR-001", title="Unused import", severity="minor")
    assert a.fingerprint == b.fingerprint

    report = codequality(review_of([a, b]))

    assert_valid(report)
    assert len(report) == 2
    assert len({e["fingerprint"] for e in report}) == 2
    assert report[0]["fingerprint"] == a.fingerprint  # the first keeps the stable one
    assert codequality(review_of([a, b])) == report  # and the second's is stable too


def test_the_same_finding_reported_twice_is_one_entry() -> None:
    f = placed(2, title="Twice")
    report = codequality(review_of([f, f, placed(3, title="Once")]))
    assert_valid(report)
    assert [e["description"] for e in report] == ["Twice: Fix it.", "Once: Fix it."]


def test_fingerprints_are_unique_across_a_mixed_review() -> None:
    findings = [placed(line, rule=rule, title=title)
                for line in (2, 3, 4, 40) for rule in ("COR-001", None)
                for title in ("One", "Two")]
    report = codequality(review_of(findings))
    assert_valid(report)
    assert len(report) == len(findings)
    assert len({e["fingerprint"] for e in report}) == len(findings)


# --- through the command line -----------------------------------------------------------------

def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
                   cwd=repo, check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository on main whose working tree changes app.py."""
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    (path / "app.py").write_text("def add(a, b):\n    return a + b\n")
    git(path, "add", ".")
    git(path, "commit", "-qm", "base")
    (path / "app.py").write_text("def add(a, b):\n    return a - b\n")
    return path


def review_cli(repo: Path, llm: FakeOpenAI, report: Path) -> Any:
    return run_cli("review", "--local", "--base-url", llm.url, "--model", "m",
                   "-o", str(repo.parent / "review.json"), "--codequality", str(report),
                   cwd=repo)


def test_review_local_writes_a_valid_code_quality_report(repo: Path, llm: FakeOpenAI) -> None:
    llm.queue(answer(findings=[finding("app.py", 2, "critical", title="Subtracts"),
                               finding("app.py", 9, "minor", rule=None, title="Off the diff"),
                               finding("ghost.py", 9, "minor", rule=None, title="Invented")]))
    report = repo.parent / "out" / "gl-code-quality-report.json"

    result = review_cli(repo, llm, report)

    assert result.code == 0, result.stderr
    assert f"Code Quality report written to {report}\n" in result.stdout
    entries = json.loads(report.read_text())
    assert_valid(entries)
    assert [(e["location"]["path"], e["location"]["lines"]["begin"], e["check_name"],
             e["severity"]) for e in entries] == [("app.py", 2, "COR-001", "critical"),
                                                  ("app.py", 9, "reviewer", "minor")]
    written = Review.model_validate_json((repo.parent / "review.json").read_text())
    # A file the change does not have (ghost.py) would point the widget nowhere: left out.
    assert [e["fingerprint"] for e in entries] == [f.fingerprint for f in written.findings
                                                   if f.in_change]


def test_an_unwritable_code_quality_path_fails_with_one_line(repo: Path,
                                                             llm: FakeOpenAI) -> None:
    blocker = repo.parent / "a-file"
    blocker.write_text("not a directory\n")
    llm.queue(answer())

    result = review_cli(repo, llm, blocker / "report.json")

    # Found before the model is asked, so no answer is lost to a typo in a path: exit 2.
    assert result.code == 2
    assert result.stderr.startswith(f"reviewer: error: --codequality {blocker / 'report.json'} "
                                    "cannot be written")
    assert result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert llm.requests == []


def test_a_removed_line_is_reported_where_it_was_removed_in_the_new_file() -> None:
    # APP removes old line 2 ("import sys"); in the new file that place is line 2, before
    # "import re". Without the diff the report can only repeat the old number.
    removed = placed(2, side="old", title="Removed import")
    context = placed(3, side="old", title="Unchanged x")  # old 3 is new 4

    mapped = codequality(review_of([removed, context]), {"app.py": app()})
    unmapped = codequality(review_of([removed, context]))

    assert [e["location"]["lines"]["begin"] for e in mapped] == [2, 4]
    assert [e["location"]["lines"]["begin"] for e in unmapped] == [2, 3]
