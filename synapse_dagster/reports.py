"""Turning plain results into the metadata people read in the Dagster UI: tables, markdown, counts."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import dagster as dg

SAMPLE_ROWS = 50


def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[tuple[str, str]], limit: int = SAMPLE_ROWS) -> dg.MetadataValue:
    """A table of at most ``limit`` rows; ``columns`` are ``(name, type)`` with Dagster's type names."""
    schema = dg.TableSchema(columns=[dg.TableColumn(name, kind) for name, kind in columns])
    records = [
        dg.TableRecord({name: _cell(row.get(name), kind) for name, kind in columns}) for row in list(rows)[:limit]
    ]
    return dg.MetadataValue.table(records=records, schema=schema)


def _cell(value: Any, kind: str) -> Any:
    if value is None:
        return "" if kind == "string" else None
    if kind == "string":
        return str(value)
    return value


def human_bytes(n: int | float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def counts_markdown(title: str, counts: Mapping[str, int]) -> str:
    lines = [f"**{title}**", "", "| | count |", "|---|---:|"]
    lines += [f"| {k} | {v} |" for k, v in counts.items()]
    return "\n".join(lines)


def reasons_markdown(title: str, items: Iterable[tuple[str, list[str]]], limit: int = SAMPLE_ROWS) -> str:
    items = list(items)
    if not items:
        return f"**{title}**: none"
    lines = [f"**{title}** ({len(items)})", ""]
    for name, reasons in items[:limit]:
        lines.append(f"- `{name}`: " + "; ".join(reasons))
    if len(items) > limit:
        lines.append(f"- … and {len(items) - limit} more")
    return "\n".join(lines)


def top_counts(values: Iterable[str], n: int = 20) -> dict[str, int]:
    return dict(Counter(values).most_common(n))
