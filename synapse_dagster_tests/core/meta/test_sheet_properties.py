"""Whatever a sheet holds, reading it either fails with one MetadataError or accounts for every keyed row once.

Keys mix Unicode (composed and decomposed accents, full-width and Hangul letters), surrounding and inner blanks,
case-only differences, repeats, blanks and numbers (1 and 1.0); values mix text, ints, floats, bools, dates and
None. Each sheet is written as .xlsx (openpyxl) and as .csv (the csv module) and read back.
"""

from __future__ import annotations

import csv
import math
import datetime as dt
import tempfile
import unicodedata
from collections import Counter
from pathlib import Path

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from synapse_dagster.core.meta.sheets import MetadataError, cell_value, key_text, read_metadata_table
from synapse_dagster_tests.core.tables import sheet

# Pieces chosen to collide: NFC/NFD twins, case twins, blanks that strip (space, no-break, ideographic, tab).
PIECES = ["P", "p", "1", "0", "é", "e\u0301", "Å", "A\u030a", "ß", "ｱ", "한", " ", "\u00a0", "\u3000", "\t", "-", "."]
KEYS = st.one_of(
    st.lists(st.sampled_from(PIECES), max_size=4).map("".join),
    st.sampled_from([0, 1, 2, 1.0, 2.0, 1.5, "1", "1.0", " 1", "P1", "p1", "P1 "]),
    st.none(),
)
VALUES = st.one_of(
    st.none(), st.lists(st.sampled_from(PIECES + ["a", ",", "\n"]), max_size=6).map("".join), st.integers(-10**9, 10**9),
    # openpyxl writes floats with 16 significant digits ('%.16g'); generate ones that survive its writer
    st.floats(allow_nan=False, allow_infinity=False).map(lambda f: float(f"{f:.15g}")).filter(math.isfinite),
    st.booleans(),
    st.dates(dt.date(1950, 1, 1), dt.date(2100, 1, 1)),
    st.datetimes(dt.datetime(1950, 1, 1), dt.datetime(2100, 1, 1)).map(lambda d: d.replace(microsecond=0)),
)
ROWS = st.lists(st.tuples(KEYS, VALUES, VALUES), min_size=1, max_size=25)
HEADER = ["key", "v1", "v2"]


def _csv_text(value):
    return "" if value is None else str(value)  # what the csv module writes for it


def write(folder: Path, fmt: str, rows) -> tuple[Path, list[list]]:
    """The sheet, and its data rows as they read back (csv turns every cell into text)."""
    path = folder / f"meta.{fmt}"
    if fmt == "xlsx":
        sheet(path, [HEADER] + [list(r) for r in rows])
        return path, [list(r) for r in rows]
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([HEADER] + [list(r) for r in rows])
    return path, [[_csv_text(v) for v in r] for r in rows]


def _expected_key(cell) -> str | None:
    """The key an independent reading of the rules gives: NFC, stripped, integral floats as ints."""
    if cell is None:
        return None
    if isinstance(cell, float) and cell.is_integer():
        cell = int(cell)
    text = unicodedata.normalize("NFC", str(cell)).strip()
    return text or None


def _check(fmt: str, rows) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path, written = write(Path(folder), fmt, rows)
        try:
            table = read_metadata_table(path)
        except MetadataError:
            event("MetadataError")
            return
    keys = [_expected_key(row[0]) for row in written]
    assert keys == [key_text(row[0]) for row in written]
    counts = Counter(k for k in keys if k is not None)
    assert not set(table.rows) & set(table.row_problems)
    assert set(table.rows) | set(table.row_problems) == set(counts)
    for key, count in counts.items():
        if count > 1:
            assert key in table.duplicate_keys and key not in table.rows
            assert table.row_problems[key][0].startswith(f"key '{key}' appears in rows ")
        else:
            row = written[keys.index(key)]
            assert key not in table.duplicate_keys
            assert table.rows[key] == {h: cell_value(v) for h, v in zip(HEADER, row) if cell_value(v) is not None}
    assert sorted(table.duplicate_keys) == sorted(k for k, c in counts.items() if c > 1)
    event("has a repeated key" if table.duplicate_keys else "no repeated key")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ROWS)
def test_every_keyed_xlsx_row_is_one_row_or_one_held_back_duplicate(rows):
    _check("xlsx", rows)


@settings(max_examples=40, deadline=None)
@given(ROWS)
def test_every_keyed_csv_row_is_one_row_or_one_held_back_duplicate(rows):
    _check("csv", rows)
