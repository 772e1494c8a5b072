"""The one table every benchmark prints: each row sets a contender against its baseline, measured in the same run.

A figure is the pair (contender, baseline) of one measure; its ratio is contender / baseline, so below 1 the
contender is cheaper. Rows carry at most three figures (wall time, client CPU, peak RSS), in fixed columns so rows
of different benchmarks line up; anything else a benchmark knows (objects per second, growth per file, the
sandbox's own CPU) goes into the row's detail. A row that did not measure what it claims (a delivery that left
units out, a crashed child) is a failed row: it shows why, never figures.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TextIO


@dataclass(frozen=True)
class Figure:
    contender: float
    baseline: float
    unit: str  # "s" (shown in ms below one second) or "MB"

    @property
    def ratio(self) -> float:
        return self.contender / self.baseline if self.baseline else float("inf")

    def cell(self) -> str:
        """``1.65x (12.3 s / 7.45 s)``: the ratio first, since that is what the row is for."""
        return f"{self.ratio:.2f}x ({_value(self.contender, self.unit)} / {_value(self.baseline, self.unit)})"


@dataclass(frozen=True)
class Row:
    topic: str       # what was measured and at which size: "delivery 2,000 units"
    contender: str   # "project"
    baseline: str    # "bare SDK script"
    wall: Figure | None = None
    cpu: Figure | None = None
    rss: Figure | None = None
    detail: str = ""
    failed: str | None = None  # why the row has no figures

    @property
    def name(self) -> str:
        return f"{self.topic}: {self.contender} vs {self.baseline}"


def failed_row(topic: str, contender: str, baseline: str, why: str) -> Row:
    return Row(topic, contender, baseline, failed=why)


COLUMNS = (("wall", "wall"), ("cpu", "client CPU"), ("rss", "peak RSS"))


def format_table(rows: Iterable[Row]) -> str:
    """The rows as one fixed-width table, with a legend saying how to read a ratio."""
    rows = list(rows)
    cells = [[row.name] + [_cell(row, attr) for attr, _ in COLUMNS] + [row.detail] for row in rows]
    header = ["benchmark (contender vs baseline)"] + [label for _, label in COLUMNS] + ["detail"]
    widths = [max(len(line[i]) for line in [header, *cells]) for i in range(len(COLUMNS) + 1)]
    lines = ["ratio = contender / baseline (below 1: the contender is cheaper); (contender / baseline) in parentheses",
             _join(header, widths), _join(["-" * w for w in widths] + ["-" * 6], widths)]
    for row, line in zip(rows, cells):
        if row.failed:
            lines.append(f"{row.name:{widths[0]}}  FAILED: {row.failed}")
        else:
            lines.append(_join(line, widths))
    return "\n".join(lines)


def print_table(rows: Iterable[Row], out: TextIO = sys.stdout) -> None:
    print("\n" + format_table(rows), file=out, flush=True)


def _cell(row: Row, attr: str) -> str:
    figure = getattr(row, attr)
    return figure.cell() if figure is not None else "-"


def _join(cells: list[str], widths: list[int]) -> str:
    fixed = "  ".join(f"{c:{w}}" for c, w in zip(cells, widths))
    return (fixed + "  " + "  ".join(cells[len(widths):])).rstrip()


def _value(value: float, unit: str) -> str:
    if unit == "s" and value < 1:
        return f"{value * 1000:.1f} ms" if value < 0.1 else f"{value * 1000:.0f} ms"
    if unit == "s":
        return f"{value:.2f} s" if value < 10 else f"{value:.1f} s"
    return f"{value:.0f} {unit}"
