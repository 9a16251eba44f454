"""The eval's matcher and figures on hand-made results, with exact expected numbers."""

from __future__ import annotations

from typing import Any

import pytest

from reviewer.eval.corpus import Defect
from reviewer.eval.match import Span, match
from reviewer.eval.metrics import figures, score, spread, summarize
from reviewer.eval.results import CaseResult, CaseRun, EvalResult, Figures, Found
from reviewer.model import ModelInfo, SpecInfo


def found(line: int, severity: str = "major", path: str = "a.py", **extra: Any) -> Found:
    return Found.model_validate({"path": path, "line": line, "severity": severity, **extra})


def defect(first: int, last: int | None = None, rule: str | None = "COR-005",
           severity: str = "major", path: str = "a.py") -> Defect:
    return Defect.model_validate({"path": path, "lines": [first, last or first], "rule": rule,
                                  "severity": severity, "what": "a bug"})


def case(name: str, defects: list[Defect], *runs: list[Found], language: str = "python",
         **run_fields: Any) -> CaseResult:
    return CaseResult(id=name, title=name, language=language, clean=not defects,
                      defects=tuple(defects), figures=Figures(),
                      runs=tuple(CaseRun(case=name, repeat=n, findings=tuple(f), **run_fields)
                                 for n, f in enumerate(runs)))


def spans(*lines: int | tuple[int, int], path: str = "a.py") -> list[Span]:
    return [Span(path, n, n) if isinstance(n, int) else Span(path, *n) for n in lines]


def test_a_tie_goes_to_the_defect_listed_first() -> None:
    # 5 is three lines from both 2 and 8.
    assert match(spans(5), spans(2, 8)) == {0: 0}


def test_closest_lines_first_among_the_largest_matchings() -> None:
    # {4-1, 5-5} and {4-5, 5-1} both pair two: the first has distance 3, the second 5.
    assert match(spans(4, 5), spans(5, 1)) == {0: 1, 1: 0}
    # Two findings on one defect: the closer one takes it.
    assert match(spans(7, 5), spans(5)) == {1: 0}


def test_matching_is_maximal_not_greedy() -> None:
    # Greedy "closest first" would pair 5 with 6 and leave 9 alone; two pairs are possible.
    assert match(spans(5, 9), spans(6, 2)) == {0: 1, 1: 0}


def test_tolerance_and_overlap() -> None:
    assert match(spans(13), spans((5, 10))) == {0: 0}  # three lines after the range
    assert match(spans(14), spans((5, 10))) == {}
    assert match(spans(14), spans((5, 10)), tolerance=4) == {0: 0}
    assert match(spans((8, 20)), spans((5, 10)), tolerance=0) == {0: 0}  # they overlap
    assert match(spans(11), spans((5, 10)), tolerance=0) == {}


def test_other_paths_and_removed_lines_match_nothing() -> None:
    assert match(spans(5, path="b.py"), spans(5)) == {}
    assert match([Span("a.py", 5, 5, old=True)], spans(5)) == {}


def test_one_finding_over_two_defects_finds_one() -> None:
    scored = score(CaseRun(case="c", findings=(found(10, end_line=14),)),
                   [defect(10), defect(14)], 3)
    got = figures([scored])
    assert (got.defects, got.matched, got.false_positives, got.recall, got.precision,
            got.f1) == (2, 1, 0, 0.5, 1.0, 0.6667)


def test_overlapping_defects_each_take_a_finding() -> None:
    scored = score(CaseRun(case="c", findings=(found(5), found(6))),
                   [defect(3, 6), defect(5, 8)], 3)
    assert scored.pairs == {0: 0, 1: 1}
    assert figures([scored]).recall == 1.0


def test_a_clean_case_counts_false_positives_and_noise() -> None:
    scored = score(CaseRun(case="c", findings=(found(1, "critical"), found(2, "minor"),
                                               found(3, "info"), found(4, "major"))), [], 3)
    got = figures([scored])
    assert (got.defects, got.matched, got.false_positives, got.noise) == (0, 0, 2, 2)
    assert (got.recall, got.precision, got.f1) == (None, 0.0, None)
    quiet = figures([score(CaseRun(case="c", findings=(found(2, "minor"),)), [], 3)])
    assert (quiet.recall, quiet.precision, quiet.f1, quiet.noise) == (None, None, None, 1)


def result() -> Any:
    buggy = case("buggy", [defect(10, rule="COR-005"), defect(20, rule="SEC-001",
                                                              severity="critical")],
                 [found(11, rule="COR-005"), found(40, "major", rule="COR-001"),
                  found(41, "info", placed=False)],
                 latency_s=2.0, tokens=100, requests=1)
    clean = case("clean", [], [found(3, "critical", rule="SEC-001"), found(4, "minor")],
                 language="go", latency_s=4.0, tokens=300, requests=2, follow_ups=1)
    missed = case("missed", [defect(7, rule=None, severity="minor")], [],
                  language="go", error="the model failed")
    return summarize([buggy, clean, missed], tolerance=3, repeat=1, tool_version="0.0",
                     model=ModelInfo(name="m", host="h"),
                     spec=SpecInfo(source="bundled", ref=None, commit=None, rules=[]))


def test_pooled_figures_over_cases() -> None:
    overall = result().overall
    # 3 defects, 1 matched; false positives: the COR-001 major and the clean case's critical.
    assert (overall.runs, overall.defects, overall.matched, overall.findings,
            overall.false_positives, overall.noise) == (3, 3, 1, 5, 2, 2)
    assert (overall.recall, overall.precision, overall.f1) == (0.3333, 0.3333, 0.3333)
    assert overall.rule_accuracy == 1.0
    assert overall.placement_rate == 0.8
    assert (overall.valid_json_first_try, overall.repairs, overall.errors) == (0.3333, 1, 1)
    assert (overall.median_latency_s, overall.median_tokens) == (2.0, 100)


def test_figures_per_case_rule_severity_and_language() -> None:
    got = result()
    cases = {c.id: c.figures for c in got.cases}
    assert (cases["buggy"].recall, cases["buggy"].precision) == (0.5, 0.5)
    assert (cases["clean"].recall, cases["clean"].precision, cases["clean"].noise) == \
        (None, 0.0, 1)
    assert (cases["missed"].recall, cases["missed"].errors) == (0.0, 1)
    assert set(got.by_rule) == {"COR-001", "COR-005", "SEC-001", "(none)"}
    assert (got.by_rule["COR-005"].recall, got.by_rule["COR-005"].precision) == (1.0, 1.0)
    assert (got.by_rule["SEC-001"].defects, got.by_rule["SEC-001"].matched,
            got.by_rule["SEC-001"].false_positives) == (1, 0, 1)
    assert got.by_rule["COR-001"].precision == 0.0
    assert (got.by_severity["critical"].defects, got.by_severity["critical"].false_positives) \
        == (1, 1)
    assert got.by_severity["minor"].recall == 0.0
    assert (got.by_language["go"].defects, got.by_language["python"].recall) == (1, 0.5)


def test_rule_accuracy_counts_matched_findings_with_a_named_rule() -> None:
    scored = score(CaseRun(case="c", findings=(found(5, rule="COR-001"), found(9, rule=None),
                                               found(30))),
                   [defect(5, rule="COR-005"), defect(9, rule="COR-004"), defect(30, rule=None)],
                   3)
    assert figures([scored]).rule_accuracy == 0.0
    right = score(CaseRun(case="c", findings=(found(5, rule="COR-005"), found(9))),
                  [defect(5, rule="COR-005"), defect(9, rule="COR-004")], 3)
    assert figures([right]).rule_accuracy == 0.5


def test_spread_over_repeats() -> None:
    runs = [score(CaseRun(case="c", repeat=0, findings=(found(5),)), [defect(5)], 3),
            score(CaseRun(case="c", repeat=1, findings=()), [defect(5)], 3)]
    got = spread(runs, 2)
    assert got is not None and got.recall == pytest.approx(0.7071, abs=1e-4)
    assert got.f1 is None  # the second repeat has no precision
    assert spread(runs, 1) is None


def repeated() -> Any:
    """Three repeats of one case with a COR-005 (major) and a SEC-001 (critical) defect, and a
    clean case that never gets a finding. COR-005 is found every time, with a stray COR-005
    false positive in repeat 1; SEC-001 only in repeat 0."""
    c = case("c", [defect(5, rule="COR-005"), defect(20, rule="SEC-001", severity="critical")],
             [found(5, rule="COR-005"), found(20, "critical", rule="SEC-001")],
             [found(5, rule="COR-005"), found(40, rule="COR-005")],
             [found(5, rule="COR-005")])
    d = case("d", [], [], [], [], language="go")
    return summarize([c, d], tolerance=3, repeat=3, tool_version="0.0",
                     model=ModelInfo(name="m", host="h"),
                     spec=SpecInfo(source="bundled", ref=None, commit=None, rules=[]))


def test_spread_per_rule_severity_case_and_language() -> None:
    got = repeated()
    rules = {name: f.spread for name, f in got.by_rule.items()}
    # COR-005: recall 1, 1, 1 and precision 1, 1/2, 1 (mean 5/6, stdev sqrt(1/12)).
    assert rules["COR-005"] is not None
    assert (rules["COR-005"].recall, rules["COR-005"].precision) == (0.0, 0.2887)
    # SEC-001: recall 1, 0, 0 (mean 1/3, stdev sqrt(1/3)); precision 1 once, then nothing.
    assert rules["SEC-001"] is not None
    assert (rules["SEC-001"].recall, rules["SEC-001"].precision) == (0.5774, None)
    severity = got.by_severity
    assert severity["major"].spread == rules["COR-005"]
    assert severity["critical"].spread is not None and severity["critical"].spread.recall == \
        0.5774
    # Overall recall 1, 1/2, 1/2 and precision 1, 1/2, 1: both stdev sqrt(1/12).
    assert got.overall.spread is not None and got.spread == got.overall.spread
    assert (got.overall.spread.recall, got.overall.spread.precision) == (0.2887, 0.2887)
    cases = {c.id: c.figures.spread for c in got.cases}
    assert cases["c"] == got.overall.spread  # the only case with defects or findings
    assert cases["d"] is not None and (cases["d"].recall, cases["d"].precision) == (None, None)
    assert got.by_language["python"].spread == got.overall.spread


def test_no_spread_from_one_repeat_and_old_files_still_load() -> None:
    once = result()
    assert once.spread is None and once.overall.spread is None
    assert all(f.spread is None for f in [*once.by_rule.values(), *once.by_severity.values()])
    # A file written before Figures had a spread: every figures object without the key.
    data = repeated().model_dump(mode="json")
    for figures_ in [data["overall"], *data["by_rule"].values(),
                     *data["by_severity"].values(), *data["by_language"].values(),
                     *(c["figures"] for c in data["cases"])]:
        del figures_["spread"]
    old = EvalResult.model_validate(data)
    assert old.by_rule["COR-005"].spread is None and old.spread is not None


def test_spread_of_the_kept_defects_and_findings() -> None:
    runs = [score(CaseRun(case="c", repeat=0, findings=(found(5), found(9, rule="X"))),
                  [defect(5), defect(9, rule="X")], 3),
            score(CaseRun(case="c", repeat=1, findings=(found(5),)),
                  [defect(5), defect(9, rule="X")], 3)]
    only_x = spread(runs, 2, lambda d: d.rule == "X", lambda f: f.rule == "X")
    # Rule X: recall 1 then 0; COR-005 alone would not vary.
    assert only_x is not None and only_x.recall == 0.7071 and only_x.precision is None
    cor = spread(runs, 2, lambda d: d.rule == "COR-005", lambda f: f.rule is None)
    assert cor is not None and (cor.recall, cor.precision) == (0.0, 0.0)
