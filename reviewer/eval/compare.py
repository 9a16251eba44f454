"""Two eval results side by side (eval compare). Pure: builds renderables, prints nothing.

Only what is comparable is compared: when the two hold different cases (a shard against a
whole run, a corpus grown since), both are measured again on the cases both hold; counts are
per run (pooled / repeats), so a --repeat 2 run reads like a single one; a different
--tolerance is named, as the figures are then not measured alike.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeVar

from rich.console import Group
from rich.text import Text

from reviewer.errors import UsageError
from reviewer.eval.layout import NONE, Cell, Col, Fit, layouts, per_run, rate, signed
from reviewer.eval.metrics import summarize
from reviewer.eval.results import EvalResult, Figures, Spread
from reviewer.model import SEVERITIES

K = TypeVar("K", bound=str)  # a rule id, a severity
RATES = ("recall", "precision", "f1", "rule_accuracy", "placement_rate", "valid_json_first_try")
COUNTS = ("defects", "matched", "false_positives", "noise", "repairs", "errors")
CHANGED = ("matched", "false_positives", "noise")  # a case is listed when one of these moved
BEYOND, WITHIN = "beyond", "within"
FLAG = Col("vs spread", "vs\nspread", left=True)
RECALLS = (Col("recall A", "recall\nA"), Col("recall B", "recall\nB"), Col("B - A"), FLAG)


def compare(a: EvalResult, b: EvalResult, names: tuple[str, str]) -> Group:
    """The overall figures of two results side by side, with B - A (a change larger than the
    runs' own spread, both run with --repeat, is flagged), then each rule's and severity's
    recall and each changed case's, flagged the same way; above them, a line for each way
    the two are not alike."""
    a, b, notes = comparable(a, b, names)
    rules = sorted(set(a.by_rule) | set(b.by_rule))
    # The cases stay last: a reader (and a test) takes every row after their title as a case.
    return Group(*(Text(note) for note in notes), _overall(a, b, names),
                 _side_by_side("rule", rules, a, b, a.by_rule, b.by_rule),
                 _side_by_side("severity", SEVERITIES, a, b, a.by_severity, b.by_severity),
                 _cases(a, b))


def comparable(a: EvalResult, b: EvalResult, names: tuple[str, str]
               ) -> tuple[EvalResult, EvalResult, list[str]]:
    """A and B on the cases both hold (measured again when that is not all of them), and the
    lines that say how they are compared; UsageError when they share no case."""
    notes: list[str] = []
    mine, theirs = {c.id: c for c in a.cases}, {c.id: c for c in b.cases}
    both = mine.keys() & theirs.keys()
    if not both:
        raise UsageError(f"{names[0]} and {names[1]} hold no case in common: nothing to "
                         "compare")
    if mine.keys() != theirs.keys():
        notes.append(f"compared on the {len(both)} case(s) both runs hold; A has "
                     f"{len(mine) - len(both)} more, B {len(theirs) - len(both)} more")
        a, b = _only(a, both), _only(b, both)
    relabelled = sorted(i for i in both if mine[i].defects != theirs[i].defects)
    if relabelled:
        notes.append(f"warning: {len(relabelled)} case(s) expect other defects in A than in "
                     f"B ({', '.join(relabelled[:3])}{', ...' if len(relabelled) > 3 else ''})")
    if a.tolerance != b.tolerance:
        notes.append(f"warning: --tolerance {a.tolerance} in A, {b.tolerance} in B: the "
                     "figures are not measured alike")
    if max(a.repeat, b.repeat) >= 2:
        notes.append(f"counts are per run: each result's counts divided by its repeats "
                     f"(A {a.repeat}, B {b.repeat})")
    if min(a.repeat, b.repeat) >= 2:
        notes.append("vs spread: beyond when B - A exceeds both runs' std. dev. added, "
                     "else within")
    return a, b, notes


def _only(result: EvalResult, ids: set[str]) -> EvalResult:
    """The result as if only these cases had been run: every figure computed again."""
    return summarize([c for c in result.cases if c.id in ids], tolerance=result.tolerance,
                     repeat=result.repeat, tool_version=result.tool_version,
                     model=result.model, spec=result.spec, shard=result.shard)


def _overall(a: EvalResult, b: EvalResult, names: tuple[str, str]) -> Fit:
    title = (f"A: {names[0]} ({a.model.name}, {a.spec.source})   "
             f"B: {names[1]} ({b.model.name}, {b.spec.source})")
    rows: list[list[Cell]] = []
    for name in RATES:
        va, vb = getattr(a.overall, name), getattr(b.overall, name)
        delta = None if va is None or vb is None else round(vb - va, 4)
        rows.append([name, rate(va), rate(vb), _delta(delta),
                     _flag(name, delta, a.spread, b.spread)])
    for name in COUNTS:
        va, vb = getattr(a.overall, name), getattr(b.overall, name)
        rows.append([name, per_run(va, a.repeat), per_run(vb, b.repeat),
                     signed(vb / max(b.repeat, 1) - va / max(a.repeat, 1)), ""])
    return layouts(title, "figure", (Col("A"), Col("B"), Col("B - A"), FLAG), rows)


def _side_by_side(key: str, names: Sequence[K], a: EvalResult, b: EvalResult,
                  mine: Mapping[K, Figures], theirs: Mapping[K, Figures]) -> Fit:
    """Each rule's (severity's) recall in A and B, B - A flagged against their spreads."""
    rows: list[list[Cell]] = []
    for name in names:
        fa, fb = mine.get(name, Figures()), theirs.get(name, Figures())
        if not (fa.defects or fa.findings or fb.defects or fb.findings):
            continue  # a severity neither run used
        rows.append([name, *_recall_change(fa, fb),
                     _pair(fa.false_positives, fb.false_positives, a.repeat, b.repeat)])
    return layouts(f"by {key}", key, (*RECALLS, Col("false pos. A→B", "false\npos.\nA→B")),
                   rows)


def _cases(a: EvalResult, b: EvalResult) -> Fit | Text:
    """The cases whose per-run counts differ between A and B (found, false positives,
    noise), with their recall change, flagged against the spread of each case's repeats;
    a line saying so when none did (an empty table reads as a failure to list them)."""
    theirs = {c.id: c.figures for c in b.cases}
    rows: list[list[Cell]] = []
    for case in a.cases:
        fa, fb = case.figures, theirs[case.id]
        if all(getattr(fa, k) * b.repeat == getattr(fb, k) * a.repeat for k in CHANGED):
            continue
        rows.append([case.id, *_recall_change(fa, fb),
                     *(_pair(getattr(fa, k), getattr(fb, k), a.repeat, b.repeat)
                       for k in CHANGED)])
    if not rows:
        return Text("no case changed")
    # A narrow terminal keeps the recall change and loses noise first, then false positives.
    cols = (*RECALLS, Col("found A→B", "found\nA→B", drop=3),
            Col("false pos. A→B", "false\npos.\nA→B", drop=2),
            Col("noise A→B", "noise\nA→B", drop=1))
    return layouts("cases that changed", "case", cols, rows)


def _pair(va: int, vb: int, ra: int, rb: int) -> str:
    return f"{per_run(va, ra)}→{per_run(vb, rb)}"


def _recall_change(a: Figures, b: Figures) -> list[Cell]:
    """Recall A, recall B, B - A and its flag (empty unless both sets have a spread)."""
    delta = None if a.recall is None or b.recall is None else round(b.recall - a.recall, 4)
    return [rate(a.recall), rate(b.recall), _delta(delta),
            _flag("recall", delta, a.spread, b.spread)]


def _delta(delta: float | None) -> str:
    return NONE if delta is None else f"{delta:+.2f}"


def _flag(name: str, delta: float | None, a: Spread | None, b: Spread | None) -> str:
    noise = [getattr(s, name, None) for s in (a, b) if s is not None]
    if delta is None or len(noise) < 2 or any(n is None for n in noise):
        return ""
    bound = sum(n for n in noise if n is not None)
    return BEYOND if abs(delta) > bound else WITHIN
