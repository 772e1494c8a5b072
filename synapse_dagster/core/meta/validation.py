"""Client-side JSON-Schema validation of unit meta, so a bad unit is caught before any byte is sent.

The backend validates too, but only when units are created, after the files were uploaded; and it
rejects a whole request for one bad item. Validating here reports every error of every unit up front.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any
import json

from jsonschema import exceptions as js_exceptions
from jsonschema import validators


class SchemaError(ValueError):
    """The collection's meta schema itself is broken; nothing can be validated against it."""


@lru_cache(maxsize=32)
def _validator(schema_json: str):
    schema = json.loads(schema_json)
    if not isinstance(schema, (dict, bool)):
        raise SchemaError(f"data_unit_meta_schema is not a valid JSON Schema: it is a {type(schema).__name__}, "
                          "not an object")
    cls = validators.validator_for(schema)  # honours "$schema"; defaults to the latest draft
    try:
        cls.check_schema(schema)
    except js_exceptions.SchemaError as exc:
        where = ".".join(str(part) for part in exc.absolute_path)
        raise SchemaError(f"data_unit_meta_schema is not a valid JSON Schema: {f'at {where!r}: ' if where else ''}"
                          f"{exc.message}") from None
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def check_schema(schema: Any) -> None:
    """Raise :class:`SchemaError` now, for a schema no unit could ever be validated against (nothing is sent)."""
    if schema is not None:
        _validator(json.dumps(schema, sort_keys=True))


def meta_errors(meta: Mapping[str, Any], schema: Mapping[str, Any] | None) -> list[str]:
    """All schema violations of ``meta``, each as 'meta.<field path>: <message>' (empty when valid)."""
    if not schema:
        return []
    validator = _validator(json.dumps(schema, sort_keys=True))
    errors = []
    for error in sorted(validator.iter_errors(dict(meta)), key=lambda e: list(map(str, e.absolute_path))):
        where = ".".join(["meta", *(str(p) for p in error.absolute_path)])
        errors.append(f"{where}: {error.message}")
    return errors
