"""Eval results as rich tables: one run's (eval run, eval merge) and two side by side
(eval compare). Pure: builds renderables, prints nothing."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text

from reviewer.eval.results import EvalResult, Figures, Spread

RATES = ("recall", "precision", "f1", "rule_accuracy", "placement_rate", "valid_json_first_try")
NONE = "-"
COUNTS = ("defects", "matched", "false_positives", "noise", "repairs", "errors")


def rate(value: float | None) -> str:
    return NONE if value is None else f"{value:.2f}"


def tables(result: EvalResult) -> Group:
    """Per case, per rule, and the overall figures of one result."""
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
    rules = Table(title="by rule")
    for column in ("rule", "defects", "found", "false pos.", "recall", "precision"):
        rules.add_column(column, justify="left" if column == "rule" else "right")
    for rule, figures in result.by_rule.items():
        rules.add_row(rule, str(figures.defects), str(figures.matched),
                      str(figures.false_positives), rate(figures.recall), rate(figures.precision))
    return Group(cases, rules, Text(_summary(result.overall, result.spread)))


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
    runs' own spread, both run with --repeat, is flagged), then each rule's."""
    return Group(_overall(a, b, names), _rules(a, b), _cases(a, b))


def _cases(a: EvalResult, b: EvalResult) -> Table:
    """The cases whose counts differ between A and B (matched, false positives, noise)."""
    table = Table(title="cases that changed")
    for column in ("case", "found A", "found B", "false pos. A", "false pos. B", "noise A",
                   "noise B"):
        table.add_column(column, justify="left" if column == "case" else "right")
    theirs = {c.id: c.figures for c in b.cases}
    for case in a.cases:
        fa, fb = case.figures, theirs.get(case.id)
        keys = ("matched", "false_positives", "noise")
        if fb is None or all(getattr(fa, k) == getattr(fb, k) for k in keys):
            continue
        table.add_row(case.id, *(str(getattr(f, k)) for k in keys for f in (fa, fb)))
    return table


def _rules(a: EvalResult, b: EvalResult) -> Table:
    table = Table(title="by rule")
    for column in ("rule", "recall A", "recall B", "B - A", "false pos. A", "false pos. B"):
        table.add_column(column, justify="left" if column == "rule" else "right")
    for rule in sorted(set(a.by_rule) | set(b.by_rule)):
        fa, fb = a.by_rule.get(rule, Figures()), b.by_rule.get(rule, Figures())
        delta = None if fa.recall is None or fb.recall is None else fb.recall - fa.recall
        table.add_row(rule, rate(fa.recall), rate(fb.recall),
                      NONE if delta is None else f"{delta:+.2f}", str(fa.false_positives),
                      str(fb.false_positives))
    return table


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
