"""Metadata sheets (``.xlsx``, legacy ``.xls``, ``.csv``): one row per unit, keyed by the unit's group key.

The SDK's own path turns every Excel value into a string and matches rows by loose substring, so an
``integer`` field is rejected by the server and one short key can match many units. Here keys match
exactly, cells keep their types (openpyxl and xlrd report them; coercion to the schema comes later),
and duplicate keys are reported instead of silently overwritten.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STANDARD_METADATA_NAMES = ("meta.xlsx", "meta.xls", "metadata.xlsx", "metadata.xls", "meta.csv", "metadata.csv")


class MetadataError(ValueError):
    """A metadata sheet that cannot be used at all; names the file and what to fix."""


@dataclass
class MetadataTable:
    path: str
    key_column: str
    columns: list[str]
    rows: dict[str, dict[str, Any]]
    duplicate_keys: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.path.replace("\\", "/").rsplit("/", 1)[-1]

    def row_for(self, group_key: str) -> tuple[str, dict[str, Any]] | None:
        """The row whose key is the group key, or (for keys like ``sub/P1``) its last part; never a substring."""
        for key in (group_key, group_key.rsplit("/", 1)[-1]):
            row = self.rows.get(key)
            if row is not None:
                return key, row
        return None


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


def key_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    return text or None


def cell_value(value: Any) -> Any:
    """Cells keep their type; dates become ISO strings (JSON has no date type); blank text is no value."""
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return value


def _read_rows(path: Path) -> list[list[Any]]:
    suffix = path.suffix.lower()
    try:
        if suffix == ".xlsx":
            import openpyxl

            workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
            try:
                return [list(row) for row in workbook.active.iter_rows(values_only=True)]
            finally:
                workbook.close()
        if suffix == ".xls":
            import xlrd

            book = xlrd.open_workbook(str(path), on_demand=True)
            sheet = book.sheet_by_index(0)
            rows = []
            for r in range(sheet.nrows):
                row = []
                for c in range(sheet.ncols):
                    cell = sheet.cell(r, c)
                    if cell.ctype == xlrd.XL_CELL_DATE:
                        row.append(xlrd.xldate.xldate_as_datetime(cell.value, book.datemode))
                    elif cell.ctype == xlrd.XL_CELL_BOOLEAN:
                        row.append(bool(cell.value))
                    elif cell.ctype in (xlrd.XL_CELL_EMPTY, xlrd.XL_CELL_BLANK):
                        row.append(None)
                    else:
                        row.append(cell.value)
                rows.append(row)
            return rows
        if suffix == ".csv":
            with path.open(newline="", encoding="utf-8-sig") as handle:
                return [list(row) for row in csv.reader(handle)]
    except Exception as exc:  # openpyxl/xlrd raise many unrelated types for a broken file
        raise MetadataError(f"metadata file {path} cannot be read ({type(exc).__name__}: {exc}); re-save it as .xlsx or .csv") from None
    raise MetadataError(f"metadata file {path} has an unsupported type '{suffix}'; use .xlsx, .xls or .csv")


def read_metadata_table(path: Path, key_column: str | None = None) -> MetadataTable:
    rows = [r for r in _read_rows(path) if any(cell_value(v) is not None for v in r)]
    if not rows:
        raise MetadataError(f"metadata file {path} is empty; it needs a header row and one row per unit")
    header = [(key_text(h) or f"column_{i + 1}") for i, h in enumerate(rows[0])]
    if len(set(header)) != len(header):
        dupes = sorted({h for h in header if header.count(h) > 1})
        raise MetadataError(f"metadata file {path} repeats the column(s) {dupes}; give every column a unique name")
    key = key_column or header[0]
    if key not in header:
        raise MetadataError(f"metadata file {path} has no column '{key}' (columns: {header}); fix metadata.key_column")
    key_index = header.index(key)
    table = MetadataTable(path=str(path), key_column=key, columns=header, rows={})
    for raw in rows[1:]:
        values = {header[i]: cell_value(v) for i, v in enumerate(raw[: len(header)])}
        unit_key = key_text(raw[key_index] if key_index < len(raw) else None)
        if unit_key is None:
            continue
        if unit_key in table.rows:
            table.duplicate_keys.append(unit_key)
            continue
        table.rows[unit_key] = {k: v for k, v in values.items() if v is not None}
    return table
