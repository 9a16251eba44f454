"""The eval's terminal tables (report.py, compare.py) on results built in code, with exact
expected cells: a rule's or a case's recall change flagged against the spread of the runs'
repeats, the per-severity and per-language tables of one result, counts per run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.text import Text

from reviewer.eval.compare import compare
from reviewer.eval.corpus import Defect
from reviewer.eval.metrics import summarize
from reviewer.eval.report import summary, tables
from reviewer.eval.results import CaseResult, CaseRun, EvalResult, Figures, Found
from reviewer.model import ModelInfo, SpecInfo

BEYOND, WITHIN = "beyond", "within"
# The starter corpus's ids: the longest (28 characters) decide whether a table fits.
IDS = sorted(p.name for p in (Path(__file__).parent.parent / "eval" / "cases").iterdir())


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


def render(renderable: Any, width: int = 200) -> str:
    console = Console(record=True, width=width)
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
    assert row(shown, "COR-001", "by rule") == ["COR-001", "1.00", "0.00", "-1.00", BEYOND, "0→0"]
    # +0.50 against 0.7071 + 0: within, though beyond the overall spread (0).
    assert row(shown, "COR-005", "by rule") == ["COR-005", "0.50", "1.00", "+0.50", WITHIN, "0→0"]
    assert row(shown, "SEC-001", "by rule") == ["SEC-001", "0.50", "1.00", "+0.50", WITHIN, "0→0"]
    assert row(shown, "minor", "by severity") == \
        ["minor", "1.00", "0.00", "-1.00", BEYOND, "0→0"]
    assert row(shown, "critical", "by severity") == \
        ["critical", "0.50", "1.00", "+0.50", WITHIN, "0→0"]
    assert "│ info " not in shown and "│ blocker " not in shown  # neither run used them


def test_compare_shows_each_changed_cases_recall_change() -> None:
    shown = render(compare(*a_and_b(), ("a.json", "b.json")))
    # alpha: recall 1, 0 (spread 0.7071) then 1, 1 (0); beta: 1, 1 then 0, 0. Found, false
    # positives and noise per run: alpha's one find in two runs is 0.5.
    assert row(shown, "alpha", "cases that changed") == \
        ["alpha", "0.50", "1.00", "+0.50", WITHIN, "0.5→1", "0→0", "0→0"]
    assert row(shown, "beta", "cases that changed") == \
        ["beta", "1.00", "0.00", "-1.00", BEYOND, "1→0", "0→0", "0→0"]
    assert row(shown, "sql", "cases that changed")[3:5] == ["+0.50", WITHIN]
    assert "│ gamma " not in shown.split("cases that changed")[1]


def test_without_repeats_nothing_is_flagged() -> None:
    shown = render(compare(*a_and_b(repeat=1), ("a.json", "b.json")))
    assert row(shown, "COR-001", "by rule") == ["COR-001", "1.00", "0.00", "-1.00", "", "0→0"]
    assert row(shown, "beta", "cases that changed")[3:5] == ["-1.00", ""]
    assert "│ alpha " not in shown  # found in repeat 0 by both
    assert BEYOND not in shown and WITHIN not in shown


def test_a_file_from_before_the_rule_spreads_flags_only_the_overall_figures() -> None:
    a, b = a_and_b()
    old = a.model_copy(update={"by_rule": {name: f.model_copy(update={"spread": None})
                                           for name, f in a.by_rule.items()}})
    shown = render(compare(old, b, ("old.json", "b.json")))
    assert row(shown, "COR-001", "by rule")[4] == ""
    assert row(shown, "recall")[-1] == WITHIN
    assert row(shown, "minor", "by severity")[4] == BEYOND


def test_one_result_has_severity_and_language_tables() -> None:
    shown = render(tables(a_and_b()[0]))
    header = " ┃ defects ┃ found ┃ false pos. ┃ noise ┃ recall ┃ precision ┃ recall s.d. ┃"
    assert f"┃ severity{header}" in shown and f"┃ language{header}" in shown
    # Counts per run: each defect once, though each case ran twice.
    assert row(shown, "minor", "by severity")[:8] == \
        ["minor", "1", "1", "0", "0", "1.00", "1.00", "0.00"]
    assert row(shown, "critical", "by severity")[:8] == \
        ["critical", "1", "0.5", "0", "0", "0.50", "1.00", "0.71"]
    assert row(shown, "go", "by language") == ["go", "1", "1", "0", "0", "1.00", "1.00", "0.00"]
    # alpha's and sql's misses fall in different repeats: python's recall does not vary.
    assert row(shown, "python", "by language") == \
        ["python", "2", "1", "0", "0", "0.50", "1.00", "0.00"]
    assert row(shown, "SEC-001", "by rule") == \
        ["SEC-001", "1", "0.5", "0", "0", "0.50", "1.00", "0.71"]
    assert row(shown, "alpha") == \
        ["alpha", "python", "1", "0.5", "0", "0", "0.50", "1.00", "0.0"]
    assert row(shown, "overall") == ["overall", "", "3", "2", "0", "0", "0.67", "1.00", "0.0"]
    assert "│ info " not in shown and "│ blocker " not in shown


def test_one_repeat_shows_no_spread_column() -> None:
    shown = render(tables(a_and_b(repeat=1)[0]))
    assert "recall s.d." not in shown
    assert row(shown, "critical", "by severity")[:7] == \
        ["critical", "1", "0", "0", "0", "0.00", "-"]


def long_ids(model: str, found_in: int) -> EvalResult:
    """Every starter-corpus id with one defect, found in the first `found_in` of 2 runs."""
    return result([case(i, "javascript", [defect(5, "COR-005", "major")],
                        *([found(5)] if n < found_in else [] for n in range(2)))
                   for i in IDS], 2, model)


def test_tables_at_80_columns_cut_no_case_id_and_no_number() -> None:
    shown = render(tables(long_ids("m", 1)), width=80)
    assert "…" not in shown
    assert max(Text(line).cell_len for line in shown.splitlines()) <= 80
    assert all(f"│ {i} " in shown for i in IDS)
    # Too narrow for precision, language and latency: the first three to go.
    assert row(shown, IDS[0]) == [IDS[0], "1", "0.5", "0", "0", "0.50"]
    assert row(shown, "overall") == ["overall", "50", "25", "0", "0", "0.50"]
    assert row(shown, "COR-005", "by rule") == \
        ["COR-005", "50", "25", "0", "0", "0.50", "1.00", "0.71"]


def test_the_summary_is_short_lines_tokens_whole() -> None:
    one = a_and_b()[0]
    one = one.model_copy(update={"overall": one.overall.model_copy(update={
        "median_tokens": 1039.5, "median_latency_s": 8.61, "repairs": 3})})
    assert summary(one).splitlines() == [
        "recall 0.67  precision 1.00  F1 0.80",
        "rule accuracy 1.00  placed 1.00  valid JSON first try 1.00",
        "8 run(s): 0 failed, 3 repair(s); median per run 1040 tokens, 8.6 s",
        "across repeats (std. dev.): recall 0.00  precision 0.00  F1 0.00",
        "counts are per run: the 2 repeats' counts added, divided by 2"]
