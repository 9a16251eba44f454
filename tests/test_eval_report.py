"""The eval's terminal tables (report.py) on results built in code, with exact expected cells:
a rule's or a case's recall change flagged against the spread of the runs' repeats, and the
per-severity and per-language tables of one result."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from reviewer.eval.corpus import Defect
from reviewer.eval.metrics import summarize
from reviewer.eval.report import compare, tables
from reviewer.eval.results import CaseResult, CaseRun, EvalResult, Figures, Found
from reviewer.model import ModelInfo, SpecInfo

BEYOND, WITHIN = "beyond the runs' spread", "within the runs' spread"


def found(line: int, severity: str = "major", rule: str | None = None,
          path: str = "a.py") -> Found:
    return Found.model_validate({"path": path, "line": line, "severity": severity,
                                 "rule": rule})


def defect(line: int, rule: str, severity: str, path: str = "a.py") -> Defect:
    return Defect.model_validate({"path": path, "lines": [line, line], "rule": rule,
                                  "severity": severity, "what": "a bug"})


def case(name: str, language: str, defects: list[Defect], *runs: list[Found]) -> CaseResult:
    return CaseResult(id=name, title=name, language=language, clean=not defects,
                      defects=tuple(defects), figures=Figures(),
                      runs=tuple(CaseRun(case=name, repeat=n, findings=tuple(f))
                                 for n, f in enumerate(runs)))


def result(cases: list[CaseResult], repeat: int, model: str = "m") -> EvalResult:
    return summarize(cases, tolerance=3, repeat=repeat, tool_version="0.0",
                     model=ModelInfo(name=model, host="h"),
                     spec=SpecInfo(source="bundled", ref=None, commit=None, rules=[]))


COR = found(5, rule="COR-005")
SEC = found(20, "critical", rule="SEC-001")
BUG = found(3, "minor", rule="COR-001", path="b.go")


def a_and_b(repeat: int = 2) -> tuple[EvalResult, EvalResult]:
    """In A, alpha's COR-005 is found in repeat 0 only and sql's SEC-001 in repeat 1 only (each
    recall 1/2, spread 0.7071), beta's COR-001 every time (1, spread 0): overall 2/3 both
    times, no spread. In B, COR-005 and SEC-001 every time, COR-001 never: overall 2/3 again.
    So the overall figures hide a rule that fell beyond its spread, and two that rose within
    theirs though beyond the overall one. gamma is clean and quiet in both."""
    a = [case("alpha", "python", [defect(5, "COR-005", "major")], [COR], []),
         case("beta", "go", [defect(3, "COR-001", "minor", path="b.go")], [BUG], [BUG]),
         case("gamma", "go", [], [], []),
         case("sql", "python", [defect(20, "SEC-001", "critical")], [], [SEC])]
    b = [case("alpha", "python", [defect(5, "COR-005", "major")], [COR], [COR]),
         case("beta", "go", [defect(3, "COR-001", "minor", path="b.go")], [], []),
         case("gamma", "go", [], [], []),
         case("sql", "python", [defect(20, "SEC-001", "critical")], [SEC], [SEC])]
    return (result([c.model_copy(update={"runs": c.runs[:repeat]}) for c in a], repeat),
            result([c.model_copy(update={"runs": c.runs[:repeat]}) for c in b], repeat, "n"))


def render(renderable: Any) -> str:
    console = Console(record=True, width=200)
    console.print(renderable)
    return console.export_text()


def row(text: str, first: str, after: str = "") -> list[str]:
    """The cells from `first` on, of the first line below the line `after` that has a cell
    `first` (tables side by side share a line)."""
    below = text.split(after, 1)[1] if after else text
    line = next(line for line in below.splitlines() if f"│ {first} " in line)
    cells = [cell.strip() for cell in line.split("│")]
    return cells[cells.index(first):-1]


def test_compare_flags_each_rule_and_severity_against_its_own_spread() -> None:
    shown = render(compare(*a_and_b(), ("a.json", "b.json")))
    assert row(shown, "recall") == ["recall", "0.67", "0.67", "+0.00", WITHIN]
    # COR-001: 1 and 0 every time, spread 0 + 0: any change is beyond it.
    assert row(shown, "COR-001", "by rule") == \
        ["COR-001", "1.00", "0.00", "-1.00", "0", "0", BEYOND]
    # +0.50 against 0.7071 + 0: within, though beyond the overall spread (0).
    assert row(shown, "COR-005", "by rule") == \
        ["COR-005", "0.50", "1.00", "+0.50", "0", "0", WITHIN]
    assert row(shown, "SEC-001", "by rule") == \
        ["SEC-001", "0.50", "1.00", "+0.50", "0", "0", WITHIN]
    assert row(shown, "minor", "by severity") == \
        ["minor", "1.00", "0.00", "-1.00", "0", "0", BEYOND]
    assert row(shown, "critical", "by severity") == \
        ["critical", "0.50", "1.00", "+0.50", "0", "0", WITHIN]
    assert "│ info " not in shown and "│ blocker " not in shown  # neither run used them


def test_compare_shows_each_changed_cases_recall_change() -> None:
    shown = render(compare(*a_and_b(), ("a.json", "b.json")))
    # alpha: recall 1, 0 (spread 0.7071) then 1, 1 (0); beta: 1, 1 then 0, 0.
    assert row(shown, "alpha", "cases that changed") == \
        ["alpha", "1", "2", "0", "0", "0", "0", "0.50", "1.00", "+0.50", WITHIN]
    assert row(shown, "beta", "cases that changed") == \
        ["beta", "2", "0", "0", "0", "0", "0", "1.00", "0.00", "-1.00", BEYOND]
    assert row(shown, "sql", "cases that changed")[-2:] == ["+0.50", WITHIN]
    assert "│ gamma " not in shown.split("cases that changed")[1]


def test_without_repeats_nothing_is_flagged() -> None:
    shown = render(compare(*a_and_b(repeat=1), ("a.json", "b.json")))
    assert row(shown, "COR-001", "by rule") == ["COR-001", "1.00", "0.00", "-1.00", "0", "0", ""]
    assert row(shown, "beta", "cases that changed")[-2:] == ["-1.00", ""]
    assert "│ alpha " not in shown  # found in repeat 0 by both
    assert BEYOND not in shown and WITHIN not in shown


def test_a_file_from_before_the_rule_spreads_flags_only_the_overall_figures() -> None:
    a, b = a_and_b()
    old = a.model_copy(update={"by_rule": {name: f.model_copy(update={"spread": None})
                                           for name, f in a.by_rule.items()}})
    shown = render(compare(old, b, ("old.json", "b.json")))
    assert row(shown, "COR-001", "by rule")[-1] == ""
    assert row(shown, "recall")[-1] == WITHIN
    assert row(shown, "minor", "by severity")[-1] == BEYOND


def test_one_result_has_severity_and_language_tables() -> None:
    shown = render(tables(a_and_b()[0]))
    header = " ┃ defects ┃ found ┃ false pos. ┃ noise ┃ recall ┃ precision ┃ recall s.d. ┃"
    assert f"┃ severity{header}" in shown and f"┃ language{header}" in shown
    assert row(shown, "minor", "by severity")[:8] == \
        ["minor", "2", "2", "0", "0", "1.00", "1.00", "0.00"]
    assert row(shown, "critical", "by severity")[:8] == \
        ["critical", "2", "1", "0", "0", "0.50", "1.00", "0.71"]
    assert row(shown, "go", "by language") == ["go", "2", "2", "0", "0", "1.00", "1.00", "0.00"]
    # alpha's and sql's misses fall in different repeats: python's recall does not vary.
    assert row(shown, "python", "by language") == \
        ["python", "4", "2", "0", "0", "0.50", "1.00", "0.00"]
    assert row(shown, "SEC-001", "by rule") == \
        ["SEC-001", "2", "1", "0", "0", "0.50", "1.00", "0.71"]
    assert "│ info " not in shown and "│ blocker " not in shown


def test_one_repeat_shows_no_spread_column() -> None:
    shown = render(tables(a_and_b(repeat=1)[0]))
    assert "recall s.d." not in shown
    assert row(shown, "critical", "by severity")[:7] == \
        ["critical", "1", "0", "0", "0", "0.00", "-"]
