"""Per-unit metadata: read a metadata sheet keyed by the unit's group key, merge, coerce to the schema.

The SDK's own path turns every Excel value into a string and matches rows by loose substring, so an
``integer`` field is rejected by the server and one short key can match many units. Here keys match
exactly, values keep their types (and are coerced to what the collection's meta schema declares),
and every unmatched row or unit is reported.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STANDARD_METADATA_NAMES = ("meta.xlsx", "meta.xls", "metadata.xlsx", "metadata.xls", "meta.csv")

DATASET_KEY_FIELD = "dataset_key"


class MetadataError(ValueError):
    """A metadata sheet that cannot be used at all; names the file and what to fix."""


@dataclass
class MetadataTable:
    path: str
    key_column: str
    columns: list[str]
    rows: dict[str, dict[str, Any]]
    duplicate_keys: list[str] = field(default_factory=list)

    def row_for(self, key: str) -> dict[str, Any] | None:
        return self.rows.get(key)


def find_metadata_file(batch_root: Path, configured: str | None) -> Path | None:
    """Resolve the configured sheet (absolute, then relative to the batch) or discover a standard name."""
    if configured:
        candidate = Path(configured).expanduser()
        if not candidate.is_absolute():
            candidate = batch_root / candidate
        if not candidate.is_file():
            raise MetadataError(
                f"metadata file '{configured}' not found (looked at {candidate}); fix metadata.excel_path"
            )
        return candidate
    for name in STANDARD_METADATA_NAMES:
        candidate = batch_root / name
        if candidate.is_file():
            return candidate
    return None


def _key_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    return text or None


def _cell_value(value: Any) -> Any:
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

            book = xlrd.open_workbook(str(path))
            sheet = book.sheet_by_index(0)
            rows = []
            for r in range(sheet.nrows):
                row = []
                for c in range(sheet.ncols):
                    cell = sheet.cell(r, c)
                    if cell.ctype == xlrd.XL_CELL_DATE:
                        row.append(xlrd.xldate.xldate_as_datetime(cell.value, book.datemode))
                    elif cell.ctype == xlrd.XL_CELL_EMPTY:
                        row.append(None)
                    else:
                        row.append(cell.value)
                rows.append(row)
            return rows
        if suffix == ".csv":
            with path.open(newline="", encoding="utf-8-sig") as handle:
                return [list(row) for row in csv.reader(handle)]
    except MetadataError:
        raise
    except Exception as exc:  # openpyxl/xlrd raise many unrelated types for a broken file
        raise MetadataError(f"metadata file {path} cannot be read ({type(exc).__name__}: {exc}); re-save it as .xlsx or .csv") from None
    raise MetadataError(f"metadata file {path} has an unsupported type '{suffix}'; use .xlsx, .xls or .csv")


def read_metadata_table(path: Path, key_column: str | None = None) -> MetadataTable:
    rows = [r for r in _read_rows(path) if any(_cell_value(v) is not None for v in r)]
    if not rows:
        raise MetadataError(f"metadata file {path} is empty; it needs a header row and one row per unit")
    header = [(_key_text(h) or f"column_{i + 1}") for i, h in enumerate(rows[0])]
    if len(set(header)) != len(header):
        dupes = sorted({h for h in header if header.count(h) > 1})
        raise MetadataError(f"metadata file {path} repeats the column(s) {dupes}; give every column a unique name")
    key = key_column or header[0]
    if key not in header:
        raise MetadataError(f"metadata file {path} has no column '{key}' (columns: {header}); fix metadata.key_column")
    key_index = header.index(key)
    table = MetadataTable(path=str(path), key_column=key, columns=header, rows={})
    for raw in rows[1:]:
        values = {header[i]: _cell_value(v) for i, v in enumerate(raw[: len(header)])}
        unit_key = _key_text(raw[key_index] if key_index < len(raw) else None)
        if unit_key is None:
            continue
        if unit_key in table.rows:
            table.duplicate_keys.append(unit_key)
            continue
        table.rows[unit_key] = {k: v for k, v in values.items() if v is not None}
    return table


# --- coercion to the meta schema -----------------------------------------------------------------

_TRUE = {"true", "yes", "y", "1", "t"}
_FALSE = {"false", "no", "n", "0", "f"}
_INT_RE = re.compile(r"^[+-]?\d+$")


def _declared_types(schema: Mapping[str, Any] | None, name: str) -> list[str]:
    if not schema:
        return []
    prop = (schema.get("properties") or {}).get(name)
    if not isinstance(prop, Mapping):
        return []
    declared = prop.get("type")
    if isinstance(declared, str):
        return [declared]
    if isinstance(declared, list):
        return [t for t in declared if isinstance(t, str)]
    return []


def coerce_value(value: Any, types: list[str]) -> Any:
    """Convert ``value`` to one of the JSON types the schema declares; raise ``ValueError`` if none fits."""
    if not types or _fits(value, types):
        return value
    for target in types:
        converted = _convert(value, target)
        if converted is not _NO:
            return converted
    raise ValueError(f"cannot be read as {' or '.join(types)}")


_NO = object()


def _fits(value: Any, types: list[str]) -> bool:
    checks = {
        "string": lambda v: isinstance(v, str),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        "boolean": lambda v: isinstance(v, bool),
        "null": lambda v: v is None,
        "array": lambda v: isinstance(v, list),
        "object": lambda v: isinstance(v, dict),
    }
    return any(checks.get(t, lambda v: False)(value) for t in types)


def _convert(value: Any, target: str) -> Any:
    if target == "string":
        if isinstance(value, bool):
            return _NO
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        if isinstance(value, (int, float)):
            return str(value)
        return _NO
    if target == "integer":
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and _INT_RE.match(value.strip()):
            return int(value.strip())
        if isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                return _NO
            return int(number) if number.is_integer() else _NO
        return _NO
    if target == "number":
        if isinstance(value, str):
            try:
                return float(value) if not _INT_RE.match(value.strip()) else int(value.strip())
            except ValueError:
                return _NO
        return _NO
    if target == "boolean":
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        if isinstance(value, (int, float)) and value in (0, 1):
            return bool(value)
        return _NO
    return _NO


@dataclass
class UnitMeta:
    meta: dict[str, Any]
    provenance: dict[str, str]
    problems: list[str]


def build_unit_meta(
    *,
    group_key: str,
    dataset_key: str,
    sheet_row: Mapping[str, Any] | None,
    sheet_name: str | None,
    directory_field: str | None,
    static: Mapping[str, Any],
    schema: Mapping[str, Any] | None,
) -> UnitMeta:
    """Merge static values < folder name < sheet row, then pin ``dataset_key`` and coerce to the schema."""
    meta: dict[str, Any] = {}
    provenance: dict[str, str] = {}
    problems: list[str] = []
    for name, value in static.items():
        meta[name], provenance[name] = value, "static"
    if directory_field:
        meta[directory_field], provenance[directory_field] = group_key.rsplit("/", 1)[-1], "directory"
    for name, value in (sheet_row or {}).items():
        if name == DATASET_KEY_FIELD:
            problems.append(
                f"metadata sheet {sheet_name} sets '{DATASET_KEY_FIELD}', which identifies the unit and is set by "
                "the pipeline; rename that column"
            )
            continue
        meta[name], provenance[name] = value, f"sheet {sheet_name}"
    meta[DATASET_KEY_FIELD], provenance[DATASET_KEY_FIELD] = dataset_key, "pipeline"
    for name in list(meta):
        types = _declared_types(schema, name)
        try:
            meta[name] = coerce_value(meta[name], types)
        except ValueError as exc:
            problems.append(f"field '{name}' = {meta[name]!r} (from {provenance[name]}) {exc}")
    return UnitMeta(meta=meta, provenance=provenance, problems=problems)


def render_dataset_key(template: str, *, pipeline: str, batch: str, group_key: str) -> str:
    return template.format(pipeline=pipeline, batch=batch, group_key=group_key)
