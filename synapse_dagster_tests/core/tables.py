"""What the metadata and plan tests share: a typed meta schema, a PNG that passes the content guard, sheets."""

from __future__ import annotations

import openpyxl

from synapse_dagster.core.organize.specs import CollectionSpecs

SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["patient_id", "age"],
    "properties": {
        "patient_id": {"type": "string"},
        "age": {"type": "integer", "minimum": 0},
        "sex": {"type": "string", "enum": ["male", "female"]},
        "scan_date": {"type": "string", "format": "date"},
        "contrast": {"type": "boolean"},
        "weight": {"type": "number"},
    },
}
PNG = b"\x89PNG\r\n\x1a\n" + b"0" * 100


def sheet(path, rows):
    wb = openpyxl.Workbook()
    for row in rows:
        wb.active.append(row)
    wb.save(path)
    return path


def specs(*spec_list, schema=SCHEMA):
    return CollectionSpecs.from_api({"id": 1, "name": "c", "meta": {"data_unit_meta_schema": schema},
                                     "file_specifications": list(spec_list)})
