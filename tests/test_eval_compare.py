"""`eval compare` compares only what is comparable: the cases both results hold, counts per
run whatever the repeats, a different --tolerance named; exact expected lines and cells."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.text import Text

from reviewer.errors import UsageError
from reviewer.eval import results
from reviewer.eval.compare import comparable, compare
from tests.conftest import run_cli
from tests.test_eval_report import (
    COR,
    IDS,
    SEC,
    a_and_b,
    case,
    defect,
    found,
    long_ids,
    render,
    result,
    row,
)

NAMES = ("a.json", "b.json")


def lines_above_the_tables(shown: str) -> list[str]:
    lines = shown.splitlines()
    return lines[:next(n for n, line in enumerate(lines) if "A: a.json" in line)]


def test_a_shard_against_a_whole_run_is_compared_on_the_cases_both_hold() -> None:
    a, b = a_and_b()
    shard = b.model_copy(update={"cases": [c for c in b.cases if c.id in ("alpha", "beta")],
                                 "shard": "1/2"})
    shown = render(compare(a, shard, NAMES))
    assert lines_above_the_tables(shown) == [
        "compared on the 2 case(s) both runs hold; A has 2 more, B 0 more",
        "counts are per run: each result's counts divided by its repeats (A 2, B 2)",
        "vs spread: beyond when B - A exceeds both runs' std. dev. added, else within"]
    # A on alpha and beta: 1/2 + 2/2 = 3/4 (repeats 1 then 1/2: spread 0.3536); B: 2/4 (0).
    assert row(shown, "recall") == ["recall", "0.75", "0.50", "-0.25", "within"]
    assert row(shown, "defects") == ["defects", "2", "2", "+0", ""]
    assert "│ SEC-001 " not in shown and "│ sql " not in shown  # only A's other cases had it


def test_counts_are_per_run_so_a_repeated_run_compares_with_a_single_one() -> None:
    """The same answers once (A) and twice (B): no count changed, though B pooled twice as
    many; then B finds alpha's defect in one of its two runs only: 0.5 per run."""
    once = result([case("alpha", "python", [defect(5, "COR-005", "major")], [COR]),
                   case("sql", "python", [defect(20, "SEC-001", "critical")], [SEC])], 1)
    twice = result([case("alpha", "python", [defect(5, "COR-005", "major")], [COR], [COR]),
                    case("sql", "python", [defect(20, "SEC-001", "critical")], [SEC],
                         [SEC, found(9, "minor")])], 2)
    shown = render(compare(once, twice, NAMES))
    assert lines_above_the_tables(shown) == [
        "counts are per run: each result's counts divided by its repeats (A 1, B 2)"]
    assert [row(shown, name) for name in ("defects", "matched", "noise")] == [
        ["defects", "2", "2", "+0", ""], ["matched", "2", "2", "+0", ""],
        ["noise", "0", "0.5", "+0.5", ""]]
    assert row(shown, "sql", "cases that changed") == \
        ["sql", "1.00", "1.00", "+0.00", "", "1→1", "0→0", "0→0.5"]
    assert "│ alpha " not in shown.split("cases that changed")[1]


def test_a_different_tolerance_is_warned_and_other_labels_named() -> None:
    a, b = a_and_b(repeat=1)
    wider = b.model_copy(update={"tolerance": 5})
    relabelled = wider.model_copy(update={"cases": [
        c.model_copy(update={"defects": ()}) if c.id == "beta" else c for c in wider.cases]})
    _, _, notes = comparable(a, relabelled, NAMES)
    assert notes == ["warning: 1 case(s) expect other defects in A than in B (beta)",
                     "warning: --tolerance 3 in A, 5 in B: the figures are not measured "
                     "alike"]


def test_results_with_no_case_in_common_are_refused() -> None:
    a, b = a_and_b()
    other = b.model_copy(update={"cases": [c.model_copy(update={"id": f"x-{c.id}"})
                                           for c in b.cases]})
    with pytest.raises(UsageError) as caught:
        compare(a, other, NAMES)
    assert str(caught.value) == "a.json and b.json hold no case in common: nothing to compare"


def test_compare_at_80_columns_cuts_nothing() -> None:
    shown = render(compare(long_ids("m", 1), long_ids("n", 2), NAMES), width=80)
    assert "…" not in shown
    assert max(Text(line).cell_len for line in shown.splitlines()) <= 80
    changed = shown.split("cases that changed")[1]
    assert all(f"│ {i} " in changed for i in IDS)
    # A's recall is 1 then 0 (spread 0.7071): +0.50 is within it.
    assert row(shown, "recall") == ["recall", "0.50", "1.00", "+0.50", "within"]
    assert row(shown, IDS[0], "cases that changed") == \
        [IDS[0], "0.50", "1.00", "+0.50", "within", "0.5→1"]  # no room for false pos. or noise


def test_a_result_of_a_newer_schema_is_refused_with_one_line(tmp_path: Path) -> None:
    """A newer file may mean other things by the same fields: it is not read as this one."""
    a, b = a_and_b()
    results.write(a, tmp_path / "a.json")
    data = json.loads(b.model_dump_json())
    data["schema_version"] = 99
    (tmp_path / "b.json").write_text(json.dumps(data))
    words = (f"reviewer: error: {tmp_path / 'b.json'} was written by a newer reviewer "
             "(schema_version 99): upgrade reviewer to read it\n")
    for command in (["compare"], ["merge", "-o", str(tmp_path / "m.json")]):
        got = run_cli("eval", *command, str(tmp_path / "a.json"), str(tmp_path / "b.json"))
        assert (got.code, got.stdout, got.stderr) == (2, "", words)
    # Not a version at all is no eval result, as before.
    data["schema_version"] = "one"
    (tmp_path / "b.json").write_text(json.dumps(data))
    got = run_cli("eval", "compare", str(tmp_path / "a.json"), str(tmp_path / "b.json"))
    assert (got.code, got.stderr) == (2, f"reviewer: error: {tmp_path / 'b.json'} is not an "
                                         "eval result (schema_version: Input should be 1); "
                                         "expected the --output of reviewer eval run\n")
