"""Figures from runs: pure functions, no I/O.

A run's findings are matched to its case's defects (match.py). A matched defect is found; an
unmatched finding of severity major or worse is a false positive (on any case, clean or not),
a minor or info one is noise (reported, not in precision). Pooled figures add the counts of
all runs first (micro): recall = matched / defects, precision = matched / (matched + false
positives), null when there is nothing to divide; F1 from those two.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from reviewer.eval.corpus import Defect
from reviewer.eval.match import Span, match
from reviewer.eval.results import CaseResult, CaseRun, EvalResult, Figures, Found, Spread
from reviewer.model import SEVERITIES, ModelInfo, SpecInfo, severity_rank

MAJOR = severity_rank("major")
NO_RULE = "(none)"
DefectFilter = Callable[[Defect], bool]
FindingFilter = Callable[[Found], bool]


@dataclass(frozen=True)
class Scored:
    """One run with its pairs: {finding index: defect index}."""

    run: CaseRun
    defects: tuple[Defect, ...]
    pairs: dict[int, int]


def score(run: CaseRun, defects: Sequence[Defect], tolerance: int) -> Scored:
    spans = [Span(f.path, f.line, max(f.line, f.end_line or f.line), f.side == "old")
             for f in run.findings]
    wanted = [Span(d.path, *d.lines) for d in defects]
    return Scored(run, tuple(defects), match(spans, wanted, tolerance))


def figures(scored: Sequence[Scored], keep_defect: DefectFilter = lambda d: True,
            keep_finding: FindingFilter = lambda f: True, *, runs: bool = True) -> Figures:
    """The figures of these runs, counting only the defects and unmatched findings kept (a
    pair counts when its defect is kept); runs=False leaves out the per-run figures."""
    defects = matched = findings = placed = fps = noise = judged = right = 0
    for s in scored:
        kept = [d for d in s.defects if keep_defect(d)]
        defects += len(kept)
        for i, found in enumerate(s.run.findings):
            j = s.pairs.get(i)
            if j is not None:
                if not keep_defect(s.defects[j]):
                    continue
                matched += 1
                if s.defects[j].rule is not None:
                    judged += 1
                    right += found.rule == s.defects[j].rule
            elif not keep_finding(found):
                continue
            elif severity_rank(found.severity) >= MAJOR:
                fps += 1
            else:
                noise += 1
            findings += 1
            placed += found.placed
    recall, precision = _ratio(matched, defects), _ratio(matched, matched + fps)
    counted = Figures(defects=defects, matched=matched, findings=findings,
                      false_positives=fps, noise=noise, recall=recall, precision=precision,
                      f1=_f1(matched, defects, fps), rule_accuracy=_ratio(right, judged),
                      placement_rate=_ratio(placed, findings))
    return _with_runs(counted, [s.run for s in scored]) if runs else counted


def _with_runs(counted: Figures, runs: Sequence[CaseRun]) -> Figures:
    answered = [r for r in runs if r.error is None]
    return counted.model_copy(update={
        "runs": len(runs),
        "valid_json_first_try": _ratio(sum(r.follow_ups == 0 for r in answered), len(runs)),
        "repairs": sum(r.follow_ups for r in runs),
        "errors": len(runs) - len(answered),
        "median_latency_s": round(statistics.median(r.latency_s for r in runs), 3)
        if runs else None,
        "median_tokens": statistics.median(r.tokens for r in runs) if runs else None,
    })


def spread(scored: Sequence[Scored], repeats: int, keep_defect: DefectFilter = lambda d: True,
           keep_finding: FindingFilter = lambda f: True) -> Spread | None:
    """How much the figures of these runs (those kept, as in figures()) vary from one repeat to
    the next: the sample deviation of each repeat's rates; None below two repeats."""
    if repeats < 2:
        return None
    each = [figures([s for s in scored if s.run.repeat == r], keep_defect, keep_finding,
                    runs=False) for r in range(repeats)]
    return Spread(recall=_deviation([f.recall for f in each]),
                  precision=_deviation([f.precision for f in each]),
                  f1=_deviation([f.f1 for f in each]))


def _deviation(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return round(statistics.stdev(known), 4) if len(known) >= 2 else None


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _f1(matched: int, defects: int, fps: int) -> float | None:
    """2PR / (P + R), which with P = m / (m + fp) and R = m / d is 2m / (d + m + fp)."""
    if not defects or not matched + fps:
        return None
    return round(2 * matched / (defects + matched + fps), 4)


def summarize(cases: Sequence[CaseResult], *, tolerance: int, repeat: int, tool_version: str,
              model: ModelInfo, spec: SpecInfo, shard: str | None = None) -> EvalResult:
    """The whole result from the cases and their runs: every figure computed again."""
    scored = {c.id: [score(r, c.defects, tolerance) for r in c.runs] for c in cases}
    every = [s for c in cases for s in scored[c.id]]
    rules = sorted({_rule(d) for c in cases for d in c.defects}
                   | {_rule(f) for c in cases for r in c.runs for f in r.findings})
    languages = sorted({c.language for c in cases})
    overall = _measured(every, repeat)
    return EvalResult(
        tool_version=tool_version, model=model, spec=spec, tolerance=tolerance, repeat=repeat,
        shard=shard, overall=overall, spread=overall.spread,
        by_severity={v: _measured(every, repeat, _only(_severity, v)) for v in SEVERITIES},
        by_rule={r: _measured(every, repeat, _only(_rule, r)) for r in rules},
        by_language={lang: _measured([s for c in cases if c.language == lang
                                      for s in scored[c.id]], repeat) for lang in languages},
        cases=[c.model_copy(update={"figures": _measured(scored[c.id], repeat)})
               for c in cases],
    )


def _measured(scored: Sequence[Scored], repeats: int,
              keep: tuple[DefectFilter, FindingFilter] | None = None) -> Figures:
    """figures() with their spread across repeats, of all the runs or of those kept."""
    # Only a subset of the findings (a rule's, a severity's) leaves out the per-run figures:
    # latency and follow-ups belong to whole runs, not to some of their findings.
    counted = figures(scored, *keep, runs=False) if keep else figures(scored)
    return counted.model_copy(update={"spread": spread(scored, repeats, *keep or ())})


def _rule(item: Defect | Found) -> str:
    return item.rule or NO_RULE


def _severity(item: Defect | Found) -> str:
    return item.severity


def _only(key: Callable[[Defect | Found], str], value: str
          ) -> tuple[DefectFilter, FindingFilter]:
    return (lambda d: key(d) == value), (lambda f: key(f) == value)
