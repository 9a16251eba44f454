"""Eval results as rich tables: one run's (eval run, eval merge) and two side by side
(eval compare). Pure: builds renderables, prints nothing."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeVar

from rich.columns import Columns
from rich.console import Group
from rich.table import Table
from rich.text import Text

from reviewer.eval.results import EvalResult, Figures, Spread
from reviewer.model import SEVERITIES

RATES = ("recall", "precision", "f1", "rule_accuracy", "placement_rate", "valid_json_first_try")
NONE = "-"
COUNTS = ("defects", "matched", "false_positives", "noise", "repairs", "errors")
K = TypeVar("K", bound=str)  # a rule id, a severity, a language


def rate(value: float | None) -> str:
    return NONE if value is None else f"{value:.2f}"


def tables(result: EvalResult) -> Group:
    """Per case, per rule, per severity and per language, and the overall figures of one
    result; with --repeat, each breakdown also shows its recall's spread across repeats."""
    cases = Table(title=f"{len(result.cases)} case(s), model {result.model.name} on "
                        f"{result.model.host}, spec {result.spec.source}"
                        + (f", shard {result.shard}" if result.shard else ""))
    for column in ("case", "language", "defects", "found", "false pos.", "noise", "recall",
                   "precision", "latency s"):
        cases.add_column(column, justify="left" if column in ("case", "language") else "right")
    for case in result.cases:
        cases.add_row(case.id, case.language, *_row(case.figures))
    cases.add_section()
    cases.add_row(Text("overall", style="bold"), "", *_row(result.overall))
    repeated = result.repeat >= 2
    # Severity and language have few rows: side by side they cost no more lines than one.
    small = Columns([_breakdown("severity", result.by_severity, repeated),
                     _breakdown("language", result.by_language, repeated)])
    return Group(cases, _breakdown("rule", result.by_rule, repeated), small,
                 Text(_summary(result.overall, result.spread)))


def _breakdown(key: str, groups: Mapping[K, Figures], repeated: bool) -> Table:
    """One row per rule (severity, language) with a defect, a finding or a run of its own."""
    table = Table(title=f"by {key}")
    columns = ["defects", "found", "false pos.", "noise", "recall", "precision"]
    for column in [key, *columns, *(["recall s.d."] if repeated else [])]:
        table.add_column(column, justify="left" if column == key else "right")
    for name, figures in groups.items():
        # A severity nobody used, or a rule named only by findings matched to another rule's
        # defect, is a row of zeros; a language always has runs (its clean cases count).
        if not (figures.defects or figures.findings or figures.runs):
            continue
        row: list[str] = [name, str(figures.defects), str(figures.matched),
                          str(figures.false_positives), str(figures.noise),
                          rate(figures.recall), rate(figures.precision)]
        if repeated:
            row.append(rate(figures.spread.recall if figures.spread else None))
        table.add_row(*row)
    return table


def _row(figures: Figures) -> list[str]:
    latency = figures.median_latency_s
    return [str(figures.defects), str(figures.matched), str(figures.false_positives),
            str(figures.noise), rate(figures.recall), rate(figures.precision),
            NONE if latency is None else f"{latency:.1f}"]


def _summary(overall: Figures, spread: Spread | None) -> str:
    line = (f"recall {rate(overall.recall)}  precision {rate(overall.precision)}  "
            f"F1 {rate(overall.f1)}  rule accuracy {rate(overall.rule_accuracy)}  "
            f"placed {rate(overall.placement_rate)}  valid JSON first try "
            f"{rate(overall.valid_json_first_try)}  repairs {overall.repairs}  "
            f"errors {overall.errors}  median tokens {overall.median_tokens or 0:g}")
    if spread is not None:
        line += (f"\nacross repeats (std. dev.): recall {rate(spread.recall)}  precision "
                 f"{rate(spread.precision)}  F1 {rate(spread.f1)}")
    return line


def compare(a: EvalResult, b: EvalResult, names: tuple[str, str]) -> Group:
    """The overall figures of two results side by side, with B - A (a change larger than the
    runs' own spread, both run with --repeat, is flagged), then each rule's and severity's
    recall and each changed case's, flagged the same way."""
    # The cases stay last: a reader (and a test) takes every row after their title as a case.
    rules = sorted(set(a.by_rule) | set(b.by_rule))
    return Group(_overall(a, b, names), _side_by_side("rule", rules, a.by_rule, b.by_rule),
                 _side_by_side("severity", SEVERITIES, a.by_severity, b.by_severity),
                 _cases(a, b))


def _cases(a: EvalResult, b: EvalResult) -> Table:
    """The cases whose counts differ between A and B (matched, false positives, noise), with
    their recall change, flagged against the spread of each case's repeats."""
    table = Table(title="cases that changed")
    for column in ("case", "found A", "found B", "false pos. A", "false pos. B", "noise A",
                   "noise B", "recall A", "recall B", "B - A", ""):
        table.add_column(column, justify="left" if column in ("case", "") else "right")
    theirs = {c.id: c.figures for c in b.cases}
    for case in a.cases:
        fa, fb = case.figures, theirs.get(case.id)
        keys = ("matched", "false_positives", "noise")
        if fb is None or all(getattr(fa, k) == getattr(fb, k) for k in keys):
            continue
        table.add_row(case.id, *(str(getattr(f, k)) for k in keys for f in (fa, fb)),
                      *_recall_change(fa, fb))
    return table


def _side_by_side(key: str, names: Sequence[K], a: Mapping[K, Figures],
                  b: Mapping[K, Figures]) -> Table:
    """Each rule's (severity's) recall in A and B, B - A flagged against their spreads."""
    table = Table(title=f"by {key}")
    for column in (key, "recall A", "recall B", "B - A", "false pos. A", "false pos. B", ""):
        table.add_column(column, justify="left" if column in (key, "") else "right")
    for name in names:
        fa, fb = a.get(name, Figures()), b.get(name, Figures())
        if not (fa.defects or fa.findings or fb.defects or fb.findings):
            continue  # a severity neither run used
        cells = _recall_change(fa, fb)
        table.add_row(name, *cells[:3], str(fa.false_positives), str(fb.false_positives),
                      cells[3])
    return table


def _recall_change(a: Figures, b: Figures) -> list[str]:
    """Recall A, recall B, B - A and its flag (empty unless both sets have a spread)."""
    delta = None if a.recall is None or b.recall is None else round(b.recall - a.recall, 4)
    return [rate(a.recall), rate(b.recall), NONE if delta is None else f"{delta:+.2f}",
            _flag("recall", delta, a.spread, b.spread)]


def _overall(a: EvalResult, b: EvalResult, names: tuple[str, str]) -> Table:
    table = Table(title=f"A: {names[0]} ({a.model.name}, {a.spec.source})   "
                        f"B: {names[1]} ({b.model.name}, {b.spec.source})")
    for column in ("figure", "A", "B", "B - A", ""):
        table.add_column(column, justify="left" if column in ("figure", "") else "right")
    for name in RATES:
        va, vb = getattr(a.overall, name), getattr(b.overall, name)
        delta = None if va is None or vb is None else round(vb - va, 4)
        table.add_row(name, rate(va), rate(vb), NONE if delta is None else f"{delta:+.2f}",
                      _flag(name, delta, a.spread, b.spread))
    for name in COUNTS:
        va, vb = getattr(a.overall, name), getattr(b.overall, name)
        table.add_row(name, str(va), str(vb), f"{vb - va:+d}", "")
    return table


def _flag(name: str, delta: float | None, a: Spread | None, b: Spread | None) -> str:
    noise = [getattr(s, name, None) for s in (a, b) if s is not None]
    if delta is None or len(noise) < 2 or any(n is None for n in noise):
        return ""
    bound = sum(n for n in noise if n is not None)
    return "beyond the runs' spread" if abs(delta) > bound else "within the runs' spread"
