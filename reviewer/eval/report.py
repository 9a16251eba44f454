"""One eval result as rich tables (eval run, eval merge). Pure: builds renderables, prints
nothing. Counts are per run: with --repeat N the pooled counts are divided by N, so a case
with one defect shows 1, not N, and its recall is its found / defects."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

from rich.columns import Columns
from rich.console import Group
from rich.text import Text

from reviewer.eval.layout import NONE, Cell, Col, Fit, layouts, per_run, rate
from reviewer.eval.results import EvalResult, Figures, Spread

K = TypeVar("K", bound=str)  # a rule id, a severity, a language
COUNTS = (Col("defects"), Col("found"), Col("false pos.", "false\npos."), Col("noise"))
# Narrow terminals lose per-case precision first (found and false pos. give it), then the
# language (the by-language table has it), then the latency (the summary has the median).
CASE_COLS = (Col("language", drop=2, left=True), *COUNTS, Col("recall"),
             Col("precision", drop=1), Col("latency s", "latency\ns", drop=3))
SET_COLS = (*COUNTS, Col("recall"), Col("precision", drop=1))
SPREAD_COL = Col("recall s.d.", "recall\ns.d.")


def tables(result: EvalResult, corpus_size: int | None = None) -> Group:
    """Per case, per rule, per severity and per language, and the overall figures of one
    result; with --repeat, each breakdown also shows its recall's spread across repeats.
    A result of no case (a shard past the corpus's end) is one line, with the corpus's size
    when it is given."""
    if not result.cases:  # four tables of nothing would look like a broken run
        return Group(Text(_empty(result, corpus_size)))
    title = (f"{len(result.cases)} case(s), model {result.model.name} on {result.model.host}, "
             f"spec {result.spec.source}" + (f", shard {result.shard}" if result.shard else ""))
    rows = [[c.id, c.language, *_row(c.figures, result.repeat)] for c in result.cases]
    rows.append([Text("overall", style="bold"), "", *_row(result.overall, result.repeat)])
    cases = layouts(title, "case", CASE_COLS, rows, sections=[len(rows) - 1])
    # Severity and language have few rows: side by side they cost no more lines than one.
    small = Columns([_breakdown("severity", result.by_severity, result.repeat),
                     _breakdown("language", result.by_language, result.repeat)])
    return Group(cases, _breakdown("rule", result.by_rule, result.repeat), small,
                 Text(summary(result)))


def _empty(result: EvalResult, corpus_size: int | None) -> str:
    about = [f"{corpus_size} case{'' if corpus_size == 1 else 's'}"] \
        if corpus_size is not None else []
    about += [result.shard] if result.shard else []
    what = "shard" if result.shard else "result"
    return f"this {what} holds no case" + (f" ({', '.join(about)})" if about else "")


def _breakdown(key: str, groups: Mapping[K, Figures], repeat: int) -> Fit:
    """One row per rule (severity, language) with a defect, a finding or a run of its own."""
    rows: list[list[Cell]] = []
    for name, figures in groups.items():
        # A severity nobody used, or a rule named only by findings matched to another rule's
        # defect, is a row of zeros; a language always has runs (its clean cases count).
        if not (figures.defects or figures.findings or figures.runs):
            continue
        row: list[Cell] = [name, *_counts(figures, repeat), rate(figures.recall),
                           rate(figures.precision)]
        if repeat >= 2:
            row.append(rate(figures.spread.recall if figures.spread else None))
        rows.append(row)
    cols = (*SET_COLS, SPREAD_COL) if repeat >= 2 else SET_COLS
    return layouts(f"by {key}", key, cols, rows)


def _counts(figures: Figures, repeat: int) -> list[Cell]:
    return [per_run(n, repeat) for n in (figures.defects, figures.matched,
                                         figures.false_positives, figures.noise)]


def _row(figures: Figures, repeat: int) -> list[Cell]:
    latency = figures.median_latency_s
    return [*_counts(figures, repeat), rate(figures.recall), rate(figures.precision),
            NONE if latency is None else f"{latency:.1f}"]


def summary(result: EvalResult) -> str:
    """The overall figures in short lines (a narrow terminal wraps none mid-phrase)."""
    o = result.overall
    lines = [f"recall {rate(o.recall)}  precision {rate(o.precision)}  F1 {rate(o.f1)}",
             f"rule accuracy {rate(o.rule_accuracy)}  placed {rate(o.placement_rate)}  "
             f"valid JSON first try {rate(o.valid_json_first_try)}",
             f"{o.runs} run(s): {o.errors} failed, {o.repairs} repair(s); median per run "
             f"{round(o.median_tokens or 0)} tokens, {o.median_latency_s or 0:.1f} s"]
    if result.spread is not None:
        lines.append(_spread(result.spread))
    if result.repeat >= 2:
        lines.append(f"counts are per run: the {result.repeat} repeats' counts added, divided "
                     f"by {result.repeat}")
    return "\n".join(lines)


def _spread(spread: Spread) -> str:
    return (f"across repeats (std. dev.): recall {rate(spread.recall)}  precision "
            f"{rate(spread.precision)}  F1 {rate(spread.f1)}")
