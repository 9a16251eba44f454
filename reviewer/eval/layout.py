"""Tables of eval figures that stay whole in a narrow terminal.

Rich shrinks a table wider than the terminal by cutting cells ("go-mo…", "+0.…"). Instead,
each table is built in layouts from widest to narrowest (full headers, then two-line ones, then
without its least needed columns), and the first that fits is shown: a case id, a rule or a
number is never cut, and a wide terminal still gets every column.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

NONE = "-"
WIDE = 10_000  # wider than any table: measured there, a table keeps its natural width
Cell = str | Text


def rate(value: float | None) -> str:
    """A rate (0..1) with two decimals, "-" when there was nothing to divide."""
    return NONE if value is None else f"{value:.2f}"


def per_run(count: float, repeat: int) -> str:
    """A count pooled over `repeat` runs, as the count of one run: whole when it is, else one
    decimal (so a --repeat 2 result reads like a single run's)."""
    value = count / max(repeat, 1)
    return str(round(value)) if value == round(value) else f"{value:.1f}"


def signed(delta: float) -> str:
    """A change of a count, signed: +4, -0.5."""
    return f"{round(delta):+d}" if delta == round(delta) else f"{delta:+.1f}"


@dataclass(frozen=True)
class Col:
    """A column after the key: its header, its header in a narrow layout (may hold a line
    break), and the order in which narrow layouts leave it out (0: never)."""

    header: str
    short: str = ""
    drop: int = 0
    left: bool = False


def layouts(title: str, key: str, cols: Sequence[Col], rows: Sequence[Sequence[Cell]],
            sections: Sequence[int] = ()) -> Fit:
    """The table of these rows (key first, then one cell per col) in every layout, widest
    first; `sections` are the row indexes a line is drawn above."""
    levels = max((c.drop for c in cols), default=0)
    variants = [(False, 0), *((True, level) for level in range(levels + 1))]
    return Fit([_table(title, key, cols, rows, sections, short, level)
                for short, level in variants])


def _table(title: str, key: str, cols: Sequence[Col], rows: Sequence[Sequence[Cell]],
           sections: Sequence[int], short: bool, level: int) -> Table:
    table = Table(title=title)
    widest = max([len(key), *(Text(str(r[0])).cell_len for r in rows)])
    # The key never wraps nor shrinks: a case id is what the reader looks for.
    table.add_column(key, no_wrap=True, min_width=widest)
    kept = [n for n, c in enumerate(cols) if not c.drop or c.drop > level]
    for n in kept:
        col = cols[n]
        table.add_column((col.short or col.header) if short else col.header, no_wrap=True,
                         justify="left" if col.left else "right", overflow="fold")
    for number, row in enumerate(rows):
        if number in sections:
            table.add_section()
        table.add_row(row[0], *(row[n + 1] for n in kept))
    return table


class Fit:
    """The first of several renderables, widest first, whose natural width fits the width it
    is given (the last when none does)."""

    def __init__(self, variants: Sequence[Table]) -> None:
        self.variants = list(variants)

    def pick(self, console: Console, options: ConsoleOptions) -> Table:
        """The widest variant whose natural width (measured unbounded) is at most the width
        given, so rich never has to shrink a column to show it."""
        wide = options.update_width(WIDE)
        for table in self.variants:
            if table.__rich_measure__(console, wide).maximum <= options.max_width:
                return table
        return self.variants[-1]

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield self.pick(console, options)

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement.get(console, options, self.pick(console, options))


