"""Join results: shards of one run (eval merge) into the result one run would give."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from reviewer import __version__
from reviewer.errors import UsageError
from reviewer.eval.metrics import summarize
from reviewer.eval.results import CaseResult, EvalResult


def merge(parts: Sequence[tuple[Path, EvalResult]]) -> EvalResult:
    """The cases of every part, figures computed again; the parts must come from runs alike
    (model, spec, tolerance, repeat) and hold different cases."""
    first_path, first = parts[0]
    seen: dict[str, Path] = {}
    cases: list[CaseResult] = []
    for path, part in parts:
        for field in ("tolerance", "repeat"):
            if getattr(part, field) != getattr(first, field):
                raise UsageError(f"{path} was run with {field} {getattr(part, field)}, "
                                 f"{first_path} with {getattr(first, field)}: not one run")
        if (part.model.name, part.spec.rules, part.spec.commit) != \
                (first.model.name, first.spec.rules, first.spec.commit):
            raise UsageError(f"{path} and {first_path} used different models or specs: "
                             "compare them (reviewer eval compare) rather than merge them")
        for case in part.cases:
            if case.id in seen:
                raise UsageError(f"case {case.id} is in both {seen[case.id]} and {path}")
            seen[case.id] = path
            cases.append(case)
    return summarize(sorted(cases, key=lambda c: c.id), tolerance=first.tolerance,
                     repeat=first.repeat, tool_version=__version__, model=first.model,
                     spec=first.spec)
