"""Metadata sheets (``.xlsx``, legacy ``.xls``, ``.csv``): one row per unit, keyed by the unit's group key.

The SDK's own path turns every Excel value into a string and matches rows by loose substring, so an
``integer`` field is rejected by the server and one short key can match many units. Here keys match
exactly (after stripping and Unicode NFC normalization), cells keep their types (openpyxl and xlrd report them;
coercion to the schema comes later), and a key on several rows holds its unit back instead of one row winning.

A sheet is untrusted input: whatever is wrong with it is one :class:`MetadataError` naming the file and the
fix when the sheet cannot be used at all, or a problem on the rows it concerns (``row_problems``) when only
those rows cannot, so the other units go on.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from synapse_dagster.core.meta.csv_sheets import csv_rows
from synapse_dagster.core.meta.sheet_rows import (
    MAX_SHEET_BYTES, BadCell, MetadataError, SheetLimits, SheetRows, check_sheet_size, column_letter,
)
from synapse_dagster.core.meta.workbooks import xls_rows, xlsx_rows

__all__ = ["MAX_SHEET_BYTES", "STANDARD_METADATA_NAMES", "MetadataError", "MetadataTable", "SheetLimits",
           "cell_value", "find_metadata_file", "key_text", "read_metadata_table"]

STANDARD_METADATA_NAMES = ("meta.xlsx", "meta.xls", "metadata.xlsx", "metadata.xls", "meta.csv", "metadata.csv")
_LISTED_ROWS = 10


@dataclass
class MetadataTable:
    path: str
    key_column: str
    columns: list[str]
    rows: dict[str, dict[str, Any]]  # key -> the row's values, for keys whose one row is usable
    duplicate_keys: list[str] = field(default_factory=list)  # keys on more than one row (their units are held back)
    row_problems: dict[str, list[str]] = field(default_factory=dict)  # key -> why its unit is held back
    notes: list[str] = field(default_factory=list)  # for the reviewer: a detected encoding, rows without a key
    worksheet: str | None = None

    @property
    def name(self) -> str:
        return self.path.replace("\\", "/").rsplit("/", 1)[-1]

    def key_for(self, group_key: str) -> str | None:
        """The sheet key for a group key, or (for keys like ``sub/P1``) its last part; never a substring."""
        group_key = normalized(group_key)  # macOS writes file names decomposed (NFD)
        for key in (group_key, group_key.rsplit("/", 1)[-1]):
            if key in self.rows or key in self.row_problems:
                return key
        return None

    def row_for(self, group_key: str) -> tuple[str, dict[str, Any]] | None:
        key = self.key_for(group_key)
        return (key, self.rows[key]) if key in self.rows else None

    def problems_for(self, group_key: str) -> list[str]:
        key = self.key_for(group_key)
        return list(self.row_problems.get(key, [])) if key is not None else []


def find_metadata_file(
    batch_root: Path, configured: str | None, *, storage_root: Path | None = None, exists: Callable[[Path], bool] = Path.is_file
) -> Path | None:
    """Resolve the configured sheet (absolute, then storage-relative, then relative to the batch) or discover one."""
    if configured:
        candidate = Path(configured).expanduser()
        tried = []
        if candidate.is_absolute():
            tried.append(candidate)
        else:
            if storage_root is not None:
                tried.append(storage_root / candidate)
            tried.append(batch_root / candidate)
        for path in tried:
            if exists(path):
                return path
        raise MetadataError(
            f"metadata file '{configured}' not found (looked at {', '.join(str(p) for p in tried)}); fix metadata.excel_path"
        )
    for name in STANDARD_METADATA_NAMES:
        candidate = batch_root / name
        if exists(candidate):
            return candidate
    return None


def normalized(text: str) -> str:
    """Text as keys and column names compare: NFC, without surrounding blanks (byte-order and zero-width marks too)."""
    return unicodedata.normalize("NFC", text).strip().strip("\ufeff\u200b").strip()


def key_text(value: Any) -> str | None:
    if value is None or isinstance(value, BadCell):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, (dt.date, dt.time)):
        value = cell_value(value)
    return normalized(str(value)) or None


def cell_value(value: Any) -> Any:
    """Cells keep their type; dates become ISO strings (JSON has no date type); blank text is no value."""
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat()
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return value


def read_metadata_table(
    path: Path, key_column: str | None = None, *, worksheet: str | None = None, encoding: str | None = None,
    label: str | None = None, limits: SheetLimits = SheetLimits(),
) -> MetadataTable:
    """Read a sheet, bounded by ``limits``; ``label`` is how messages name it (default: the path as given)."""
    label = label or str(path)
    problem = None
    try:
        return _read(path, key_column, worksheet, encoding, label, limits)
    except OSError as exc:  # unreadable, a folder, gone since it was listed
        problem = f"metadata file {label} cannot be opened ({exc.strerror or exc}); check that it is a readable file"
    raise MetadataError(problem)


def _read(path: Path, key_column: str | None, worksheet: str | None, encoding: str | None, label: str,
          limits: SheetLimits) -> MetadataTable:
    size = path.stat().st_size
    check_sheet_size(label, size, limits)
    if size == 0:
        raise MetadataError(f"metadata file {label} is empty (0 bytes); it needs a header row and one row per unit")
    with _open_rows(path, label, worksheet, encoding, limits) as sheet:
        table = _build(sheet, key_column, limits)
    table.path = label
    return table


def _open_rows(path: Path, label: str, worksheet: str | None, encoding: str | None,
               limits: SheetLimits) -> AbstractContextManager[SheetRows]:
    suffix = path.suffix.lower()
    if suffix == ".xlsx":
        return xlsx_rows(path, label, worksheet, limits)
    if suffix == ".xls":
        return xls_rows(path, label, worksheet, limits)
    if suffix == ".csv":
        return csv_rows(path, label, encoding, limits)
    raise MetadataError(f"metadata file {label} has an unsupported type '{suffix}'; use .xlsx, .xls or .csv")


@dataclass(frozen=True)
class _Header:
    row: int
    names: dict[int, str]  # column index -> name; blank header cells are left out


@dataclass
class _Key:
    rows: list[int]
    spellings: list[str]
    values: dict[str, Any]
    problems: list[str]


def _build(sheet: SheetRows, key_column: str | None, limits: SheetLimits) -> MetadataTable:
    rows = _bounded(sheet, limits)
    first = next(rows, None)
    if first is None:
        raise MetadataError(f"metadata file {sheet.where} is empty; it needs a header row and one row per unit")
    header = _header(sheet.where, *first)
    key = _key_column(sheet.where, header, key_column)
    key_index = next(i for i, name in header.names.items() if name == key)
    seen, keyless = _collect(rows, header, key_index, sheet.where)
    table = MetadataTable(path=sheet.where, key_column=key, columns=list(header.names.values()), rows={},
                          notes=list(sheet.notes), worksheet=sheet.worksheet)
    for unit_key, entry in seen.items():
        if len(entry.rows) > 1:
            table.duplicate_keys.append(unit_key)
            table.row_problems[unit_key] = [_repeated(unit_key, entry, sheet.where)] + entry.problems
        elif entry.problems:
            table.row_problems[unit_key] = entry.problems
        else:
            table.rows[unit_key] = entry.values
    if keyless:
        table.notes.append(f"{_rows_text(keyless)} of {sheet.where} hold values but no {key}; they match no unit")
    return table


def _bounded(sheet: SheetRows, limits: SheetLimits) -> Iterator[tuple[int, list[Any]]]:
    """The non-empty rows, trimmed of trailing blanks; a sheet past a row or column limit is refused."""
    count = 0
    for number, cells in sheet.rows:
        width = next((i + 1 for i in range(len(cells) - 1, -1, -1) if not _blank(cells[i])), 0)
        if width == 0:
            continue
        if width > limits.max_columns:
            raise MetadataError(f"metadata file {sheet.where} row {number} has a value in column "
                                f"{column_letter(width - 1)}, past the limit of {limits.max_columns:,} columns; "
                                "delete the unused columns")
        count += 1
        if count > limits.max_rows:
            raise MetadataError(f"metadata file {sheet.where} has more than {limits.max_rows:,} rows (row {number}); "
                                "split the batch")
        yield number, cells[:width]


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _header(where: str, number: int, cells: list[Any]) -> _Header:
    names: dict[int, str] = {}
    for i, cell in enumerate(cells):
        if isinstance(cell, BadCell):
            raise MetadataError(f"metadata file {where}: header cell {column_letter(i)}{number}: {cell.problem()}")
        name = key_text(cell)
        if name is not None:
            names[i] = name
    letters: dict[str, list[str]] = {}
    for i, name in names.items():
        letters.setdefault(name, []).append(column_letter(i))
    repeated = {name: cols for name, cols in letters.items() if len(cols) > 1}
    if repeated:
        listed = "; ".join(f"'{name}' (columns {', '.join(cols)})" for name, cols in repeated.items())
        raise MetadataError(f"metadata file {where} repeats the column name {listed} in row {number}; give every "
                            "column a unique name")
    return _Header(number, names)


def _key_column(where: str, header: _Header, key_column: str | None) -> str:
    columns = list(header.names.values())
    key = key_text(key_column) if key_column is not None else columns[0]
    if key not in columns:
        raise MetadataError(f"metadata file {where} has no column '{key_column}' (columns: {columns}); "
                            "fix metadata.key_column")
    return key


def _collect(rows: Iterator[tuple[int, list[Any]]], header: _Header, key_index: int,
             where: str) -> tuple[dict[str, _Key], list[int]]:
    """Every data row by its key (in order of first appearance), and the rows that hold values but no key."""
    seen: dict[str, _Key] = {}
    keyless: list[int] = []
    for number, cells in rows:
        values, problems = _row_values(cells, header, number, where)
        raw = cells[key_index] if key_index < len(cells) else None
        if isinstance(raw, BadCell):
            raise MetadataError(f"metadata file {where} row {number}: the key cell {column_letter(key_index)}{number} "
                                f"cannot be matched to a unit: {raw.problem()}")
        key = key_text(raw)
        if key is None:
            keyless.append(number)
        elif key in seen:
            entry = seen[key]
            entry.rows.append(number)
            entry.spellings.append(_spelling(raw))
            entry.problems += problems
        else:
            seen[key] = _Key([number], [_spelling(raw)], values, problems)
    return seen, keyless


def _row_values(cells: list[Any], header: _Header, number: int, where: str) -> tuple[dict[str, Any], list[str]]:
    values: dict[str, Any] = {}
    problems: list[str] = []
    for i, cell in enumerate(cells):
        if _blank(cell):
            continue
        name = header.names.get(i)
        if name is None:
            raise MetadataError(f"metadata file {where}: column {column_letter(i)} holds values (row {number}) but has "
                                f"no name in header row {header.row}; name it (merged header cells often leave a "
                                "column without one)")
        if isinstance(cell, BadCell):
            problems.append(f"row {number} of {where}, column '{name}' ({column_letter(i)}{number}): {cell.problem()}")
            continue
        value = cell_value(cell)
        if value is not None:
            values[name] = value
    return values, problems


def _spelling(raw: Any) -> str:
    text = raw if isinstance(raw, str) else None
    if text is not None and text != unicodedata.normalize("NFC", text):
        return ascii(text)  # decomposed accents look the same as composed ones; show the code points
    return repr(raw)


def _repeated(key: str, entry: _Key, where: str) -> str:
    spellings = list(dict.fromkeys(entry.spellings))
    written = f" (written {', '.join(spellings)})" if len(spellings) > 1 else ""
    return f"key '{key}' appears in {_rows_text(entry.rows)} of {where}{written}; keep one row"


def _rows_text(numbers: list[int]) -> str:
    shown = [str(n) for n in numbers[:_LISTED_ROWS]]
    if len(numbers) > _LISTED_ROWS:
        return f"rows {', '.join(shown)} and {len(numbers) - _LISTED_ROWS} more"
    if len(shown) == 1:
        return f"row {shown[0]}"
    return f"rows {', '.join(shown[:-1])} and {shown[-1]}"
