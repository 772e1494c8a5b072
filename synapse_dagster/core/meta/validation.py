"""Client-side JSON-Schema validation of unit meta, so a bad unit is caught before any byte is sent.

The backend validates too, but only when units are created, after the files were uploaded; and it
rejects a whole request for one bad item. Validating here reports every error of every unit up front.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

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
    return compiled(schema).errors(meta)


def compiled(schema: Mapping[str, Any] | None) -> MetaValidator:
    """The validator of ``schema``; compile it once per batch, not once per unit."""
    return _compiled(json.dumps(schema, sort_keys=True)) if schema else MetaValidator(None)


@lru_cache(maxsize=32)
def _compiled(schema_json: str) -> MetaValidator:
    return MetaValidator(json.loads(schema_json))


# What a flat object schema may say and still be checked field by field: anything else (a $ref, allOf, an
# additionalProperties: false ...) is left to jsonschema whole.
_TOP_KEYWORDS = frozenset({"$schema", "$id", "$comment", "title", "description", "type", "required", "properties",
                           "examples", "default"})
_FIELD_KEYWORDS = frozenset({"type", "enum", "pattern", "minimum", "maximum", "minLength", "maxLength", "format",
                             "title", "description", "$comment", "examples", "default"})


class MetaValidator:
    """A meta schema compiled once for a whole batch.

    jsonschema costs tens of µs per unit, a few seconds per 100k units. For the flat object schemas collections
    use, each field gets a quick test that only ever says "valid" when jsonschema would; a value that fails it
    (and every unit of a schema of another shape) is judged by jsonschema itself, so messages are jsonschema's.
    """

    def __init__(self, schema: Mapping[str, Any] | None) -> None:
        self.schema = schema
        self.validator = _validator(json.dumps(schema, sort_keys=True)) if schema else None
        self.fields = _field_tests(schema, self.validator.format_checker) if self.validator else None

    def errors(self, meta: Mapping[str, Any]) -> list[str]:
        if self.validator is None:
            return []
        if self.fields is None:
            return _messages(self.validator.iter_errors(dict(meta)), ())
        required, tests = self.fields
        missing = [message for name, message in required if name not in meta]  # jsonschema's words, made once
        found = []
        for name, value in meta.items():
            test = tests.get(name)
            if test is not None and not test[0](value):
                found += [([name, *map(str, e.absolute_path)], e.message)
                          for e in self.validator.evolve(schema=test[1]).iter_errors(value)]
        if not found:
            return missing
        return missing + [f"{'.'.join(['meta', *path])}: {message}" for path, message in sorted(found, key=lambda f: f[0])]


def _messages(errors: Any, prefix: tuple[str, ...]) -> list[str]:
    found = [([*prefix, *map(str, e.absolute_path)], e.message) for e in errors]
    return [f"{'.'.join(['meta', *path])}: {message}" for path, message in sorted(found, key=lambda f: f[0])]


Quick = Callable[[Any], bool]


def _field_tests(schema: Mapping[str, Any], formats: Any) -> tuple[list[tuple[str, str]], dict[str, tuple[Quick, Any]]] | None:
    """([(required name, the error when it is missing)], {field: (quick test, its subschema)}), or ``None`` when
    the schema is not flat. A missing field's error comes first, as jsonschema's would (its path is the top)."""
    if not isinstance(schema, dict):
        return None
    properties = schema.get("properties", {})
    required = schema.get("required", [])
    if (set(schema) - _TOP_KEYWORDS or schema.get("type", "object") != "object"
            or not isinstance(properties, dict) or not isinstance(required, list)
            or not all(isinstance(r, str) for r in required)):
        return None
    tests = {}
    for name, subschema in properties.items():
        quick = _quick_test(subschema, formats)
        if quick is None:
            return None
        tests[name] = (quick, subschema)
    return [(name, f"meta: {name!r} is a required property") for name in required], tests


def _quick_test(subschema: Any, formats: Any) -> Quick | None:
    if subschema is True or subschema == {}:
        return lambda value: True
    if not isinstance(subschema, dict) or set(subschema) - _FIELD_KEYWORDS:
        return None
    tests = [t for t in (_type_test(subschema.get("type")), _enum_test(subschema.get("enum")),
                         _string_test(subschema), _range_test(subschema), _format_test(subschema.get("format"), formats))
             if t is not None]
    if len(tests) == 1:
        return tests[0]
    return lambda value: all(t(value) for t in tests)


_EXACT_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,), "integer": (int,), "number": (int, float), "boolean": (bool,), "null": (type(None),),
    "array": (list,), "object": (dict,)}


def _type_test(declared: Any) -> Quick | None:
    names = [declared] if isinstance(declared, str) else declared if isinstance(declared, list) else None
    if declared is None:
        return None
    exact = {t for n in names or () for t in _EXACT_TYPES.get(n, ())}  # unknown type names: always ask jsonschema
    return lambda value: type(value) in exact


def _enum_test(enum: Any) -> Quick | None:
    if enum is None:
        return None
    strings = frozenset(e for e in enum if type(e) is str) if isinstance(enum, list) else frozenset()
    return lambda value: type(value) is str and value in strings


def _string_test(subschema: Mapping[str, Any]) -> Quick | None:
    if not {"pattern", "minLength", "maxLength"} & set(subschema):
        return None
    try:
        pattern = re.compile(subschema["pattern"]) if "pattern" in subschema else None
    except (re.error, TypeError):
        return lambda value: False
    low, high = subschema.get("minLength", 0), subschema.get("maxLength")

    def test(value: Any) -> bool:
        return (type(value) is str and (pattern is None or pattern.search(value) is not None)
                and (type(low) is int and len(value) >= low) and (high is None or (type(high) is int and len(value) <= high)))

    return test


def _range_test(subschema: Mapping[str, Any]) -> Quick | None:
    low, high = subschema.get("minimum"), subschema.get("maximum")
    if low is None and high is None:
        return None
    if not all(v is None or type(v) in (int, float) for v in (low, high)):
        return lambda value: False
    return lambda value: (type(value) in (int, float) and (low is None or value >= low)
                          and (high is None or value <= high))


def _format_test(fmt: Any, formats: Any) -> Quick | None:
    """Formats are asserted by the validator's own format checker, as jsonschema does."""
    if fmt is None:
        return None
    if formats is None or not isinstance(fmt, str):
        return lambda value: False
    return lambda value: formats.conforms(value, fmt)
