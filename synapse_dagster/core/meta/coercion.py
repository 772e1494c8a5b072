"""Coercing metadata values to the JSON types the collection's meta schema declares.

Sheets, CSVs, file names and folder names all produce text or loosely typed cells; the server
rejects ``"45"`` for an ``integer`` field. Converting up front, and naming the value that cannot be
converted, is what turns a late server rejection into an early, fixable report.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from functools import partial
from typing import Any

from synapse_dagster.core.memo import BoundedMemo

_TRUE = {"true", "yes", "y", "1", "t", "on"}
_FALSE = {"false", "no", "n", "0", "f", "off"}
_INT_RE = re.compile(r"^[+-]?\d+$")
_DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%Y.%m.%d", "%Y%m%d")
_NO = object()


def declared(schema: Mapping[str, Any] | None, name: str) -> tuple[list[str], str | None]:
    """The JSON types and string ``format`` the schema declares for top-level field ``name``."""
    if not schema:
        return [], None
    prop = (schema.get("properties") or {}).get(name)
    if not isinstance(prop, Mapping):
        return [], None
    kind = prop.get("type")
    types = [kind] if isinstance(kind, str) else [t for t in kind if isinstance(t, str)] if isinstance(kind, list) else []
    fmt = prop.get("format")
    return types, fmt if isinstance(fmt, str) else None


class FieldTypes(BoundedMemo[str, tuple[list[str], str | None]]):
    """:func:`declared` for one schema, remembered per field: a batch asks it for every field of every unit."""

    def __init__(self, schema: Mapping[str, Any] | None) -> None:
        super().__init__(partial(declared, schema))


def coerce_value(value: Any, types: list[str], fmt: str | None = None) -> Any:
    """Convert ``value`` to one of ``types`` (dates to ISO text for ``format: date``); ``ValueError`` if none fits."""
    if fmt in ("date", "date-time") and (not types or "string" in types):
        iso = _iso(value, fmt)
        if iso is not _NO:
            return iso
    if not types or _fits(value, types):
        return value
    for target in types:
        converted = _convert(value, target)
        if converted is not _NO:
            return converted
    raise ValueError(f"cannot be read as {' or '.join(types)}" + (f" ({fmt})" if fmt else ""))


def normalize(value: Any) -> Any:
    """JSON-safe values: dates (from YAML or Excel) become ISO strings."""
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() and value.tzinfo is None else value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): normalize(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [normalize(v) for v in value]
    return value


def _iso(value: Any, fmt: str) -> Any:
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if fmt == "date" else value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat() if fmt == "date" else dt.datetime.combine(value, dt.time()).isoformat()
    if not isinstance(value, str):
        return _NO
    text = value.strip()
    if fmt == "date":
        for pattern in _DATE_FORMATS:
            try:
                return dt.datetime.strptime(text, pattern).date().isoformat()
            except ValueError:
                continue
        try:
            parsed = dt.datetime.fromisoformat(text)
        except ValueError:
            return _NO
        return parsed.date().isoformat() if parsed.time() == dt.time() else _NO
    try:
        return dt.datetime.fromisoformat(text.replace(" ", "T", 1)).isoformat()
    except ValueError:
        return _NO


_FITS = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "array": lambda v: isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
}


def _never(value: Any) -> bool:
    return False


def _fits(value: Any, types: list[str]) -> bool:
    for kind in types:
        if _FITS.get(kind, _never)(value):
            return True
    return False


def _convert(value: Any, target: str) -> Any:
    if target == "string":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return _NO
        return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)
    if target == "integer":
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            text = value.strip()
            if _INT_RE.match(text):
                return int(text)
            try:
                number = float(text)
            except ValueError:
                return _NO
            return int(number) if number.is_integer() else _NO
        return _NO
    if target == "number":
        if isinstance(value, str):
            text = value.strip()
            if _INT_RE.match(text):
                return int(text)
            try:
                return float(text)
            except ValueError:
                return _NO
        return _NO
    if target == "boolean":
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value in (0, 1):
            return bool(value)
        return _NO
    if target == "null":
        return None if isinstance(value, str) and not value.strip() else _NO
    return _NO
