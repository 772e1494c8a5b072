"""The compiled meta validator must say exactly what jsonschema says, unit by unit, or it would hide bad meta."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import validators

from synapse_dagster.core.meta.validation import MetaValidator, compiled
from synapse_sandbox.demo_data import META_SCHEMA

# The demo collection's schema (every keyword a flat schema uses), plus string lengths and a list of types.
SCHEMA = {**META_SCHEMA, "properties": {**META_SCHEMA["properties"], "site": {"type": "string", "minLength": 2,
                                                                              "maxLength": 5},
                                        "score": {"type": ["number", "null"]}}}
NOT_FLAT = {**SCHEMA, "additionalProperties": False}

values = st.one_of(st.none(), st.booleans(), st.integers(-5, 200), st.floats(allow_nan=True), st.sampled_from(
    ["P1234", "P12", "F", "M", "f", "2026-02-30", "2026-12-01", "ab", "abcdef", "", "x"]), st.text(max_size=8),
    st.lists(st.integers(), max_size=2))
metas = st.dictionaries(st.sampled_from([*SCHEMA["properties"], "extra"]), values, max_size=9)


def reference(schema: dict, meta: dict) -> list[str]:
    """What planning reported before the validator was compiled: jsonschema's errors, sorted by path."""
    sorted_schema = json.loads(json.dumps(schema, sort_keys=True))
    cls = validators.validator_for(sorted_schema)
    validator = cls(sorted_schema, format_checker=cls.FORMAT_CHECKER)
    errors = sorted(validator.iter_errors(meta), key=lambda e: list(map(str, e.absolute_path)))
    return [f"{'.'.join(['meta', *(str(p) for p in e.absolute_path)])}: {e.message}" for e in errors]


@settings(max_examples=600, deadline=None)
@given(metas)
def test_flat_schemas_get_jsonschemas_messages(meta):
    assert compiled(SCHEMA).errors(meta) == reference(SCHEMA, meta)


@settings(max_examples=200, deadline=None)
@given(metas)
def test_other_schemas_are_left_to_jsonschema_whole(meta):
    assert compiled(NOT_FLAT).fields is None
    assert compiled(NOT_FLAT).errors(meta) == reference(NOT_FLAT, meta)


def test_a_flat_schema_is_compiled_field_by_field():
    validator = compiled(SCHEMA)
    assert validator.fields is not None
    assert validator.errors({"patient_id": "P0001", "age": 40, "sex": "F", "dataset_key": "k",
                             "scan_date": "2026-01-31"}) == []
    assert validator.errors({"age": True, "sex": "F", "dataset_key": "k"}) == [
        "meta: 'patient_id' is a required property", "meta.age: True is not of type 'integer'"]


def test_no_schema_means_no_errors():
    assert MetaValidator(None).errors({"anything": 1}) == []
