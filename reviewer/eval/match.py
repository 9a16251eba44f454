"""Pair findings with expected defects: one to one, as many pairs as possible.

A finding can pair with a defect on the same path when their line ranges are at most
`tolerance` lines apart (0 when they overlap); severity, rule and placement play no part.
Among the largest matchings, the one with the least total distance wins (closest lines
first), then the one pairing findings and defects in the order they were reported and listed: a
maximum-cardinality maximum-weight matching (networkx's blossom algorithm) with integer
weights built so that each criterion outranks the next. A finding on a removed line (side
"old") pairs with nothing: defects are on added or context lines.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import networkx as nx

DEFAULT_TOLERANCE = 3


@dataclass(frozen=True)
class Span:
    """Lines first..last of path, on the new side unless old."""

    path: str
    first: int
    last: int
    old: bool = False


def distance(a: Span, b: Span) -> int:
    """Lines between two ranges; 0 when they overlap or touch."""
    return max(0, b.first - a.last, a.first - b.last)


def match(findings: Sequence[Span], defects: Sequence[Span],
          tolerance: int = DEFAULT_TOLERANCE) -> dict[int, int]:
    """The pairs, as {finding index: defect index}."""
    graph: nx.Graph[tuple[str, int]] = nx.Graph()
    n, m = len(findings), len(defects)
    # The tie-break terms of a whole matching, summed, stay below one step of closeness.
    order = n * m * min(n, m) + 1
    for i, found in enumerate(findings):
        for j, defect in enumerate(defects):
            if found.old or found.path != defect.path:
                continue
            gap = distance(found, defect)
            if gap <= tolerance:
                closeness = tolerance + 1 - gap  # >= 1
                first = (n - i) * (m - j)  # early with early, in order
                graph.add_edge(("f", i), ("d", j), weight=closeness * order + first)
    pairs = nx.max_weight_matching(graph, maxcardinality=True)
    result: dict[int, int] = {}
    for a, b in pairs:
        finding, defect = (a, b) if a[0] == "f" else (b, a)
        result[finding[1]] = defect[1]
    return dict(sorted(result.items()))
