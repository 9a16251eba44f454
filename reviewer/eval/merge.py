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
    (model, spec, tolerance, repeat) and hold different cases, and when they are shards, be
    every shard of one run: a missing shard would pass for the whole run."""
    # The shards first: a whole run among them holds their cases too, and saying so is the
    # answer, where "case x is in both" would only be its symptom.
    check_shards([(path, part.shard) for path, part in parts])
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


def check_paths(parts: Sequence[Path], output: Path) -> None:
    """Before anything is read: UsageError when a part is named twice (its cases would be
    "in both" of one file), or when --output is one of the parts (merging would overwrite
    an input)."""
    seen: dict[Path, Path] = {}
    for path in parts:
        same = seen.get(path.resolve())
        if same is not None:
            raise UsageError((f"{path} is given twice" if same == path else
                              f"{same} and {path} are the same file") + ": name each part once")
        seen[path.resolve()] = path
    if output.resolve() in seen:
        raise UsageError(f"--output {output} is one of the parts: merging would overwrite it; "
                         "name another file")


def check_shards(labels: Sequence[tuple[Path, str | None]]) -> None:
    """UsageError unless the parts are all whole results (disjoint cases, joined as they are)
    or all the shards of one run: the same N, each index 1..N exactly once."""
    sharded = [(path, _parsed(path, label)) for path, label in labels if label]
    if not sharded:
        return
    whole = [path for path, label in labels if not label]
    if whole:
        path, (index, total) = sharded[0]
        raise UsageError(f"{whole[0]} is a whole run, {path} shard {index}/{total}: "
                         "merge the shards of one run, and only them")
    first, (index, total) = sharded[0]
    taken: dict[int, Path] = {}
    for path, (i, n) in sharded:
        if n != total:
            raise UsageError(f"{first} is shard {index}/{total}, {path} shard {i}/{n}: "
                             "not the shards of one run")
        if i in taken:
            raise UsageError(f"{taken[i]} and {path} are both shard {i}/{n}")
        taken[i] = path
    missing = [f"{i}/{total}" for i in range(1, total + 1) if i not in taken]
    if missing:
        which = f"shard {missing[0]} is" if len(missing) == 1 else \
            f"shards {', '.join(missing)} are"
        raise UsageError(f"{which} missing: merge every shard of the run (eval run --shard)")


def _parsed(path: Path, label: str) -> tuple[int, int]:
    index, _, total = label.partition("/")
    if not (index.isdigit() and total.isdigit() and 1 <= int(index) <= int(total)):
        raise UsageError(f"{path} says it is shard {label!r}, which is not I/N")
    return int(index), int(total)
