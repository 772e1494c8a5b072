"""What the metadata and plan tests share: a typed meta schema, a PNG that passes the content guard, sheets
(with formula cells as Excel and as scripts write them)."""

from __future__ import annotations

import io
import re
import zipfile

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


def with_cells(path, cells):
    """Rewrite cells of the first worksheet's XML (coordinate -> ``<c>`` element), as programs that never ran
    Excel write them (a formula without ``<v>``) or as Excel does (a formula and its cached value)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as out:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "xl/worksheets/sheet1.xml":
                text = data.decode()
                for ref, element in cells.items():
                    text, count = re.subn(rf'<c r="{ref}"[^>]*?(/>|>.*?</c>)', element, text, count=1)
                    assert count == 1, ref
                data = text.encode()
            out.writestr(info, data)
    path.write_bytes(buffer.getvalue())
    return path


def specs(*spec_list, schema=SCHEMA):
    return CollectionSpecs.from_api({"id": 1, "name": "c", "meta": {"data_unit_meta_schema": schema},
                                     "file_specifications": list(spec_list)})
