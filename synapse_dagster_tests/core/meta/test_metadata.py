"""Unit meta: sheets keyed exactly with their cell types, coercion to the schema, precedence, sidecars, validation."""

import datetime as dt

import pytest

from synapse_dagster.core.meta.coercion import coerce_value
from synapse_dagster.core.meta.sheets import MetadataError, find_metadata_file, read_metadata_table
from synapse_dagster.core.meta.merge import build_unit_meta
from synapse_dagster.core.meta.sidecars import read_sidecar
from synapse_dagster.core.meta.sources import SourceValues
from synapse_dagster.core.meta.validation import SchemaError, meta_errors
from synapse_dagster_tests.core.tables import SCHEMA, sheet


def test_excel_keeps_types_and_matches_keys_exactly(tmp_path):
    sheet(tmp_path / "meta.xlsx", [
        ["patient_id", "age", "scan_date", "contrast", "site"],
        ["P1", 45, dt.datetime(2026, 1, 2), True, " Seoul "],
        [1001, 50.0, dt.datetime(2026, 1, 3, 10, 30), False, None],
        ["P2", 99, None, None, None],
        [None, None, None, None, None],
        ["P2", 98, None, None, None],
    ])
    table = read_metadata_table(find_metadata_file(tmp_path, None))
    assert table.key_column == "patient_id"
    assert table.rows["P1"] == {"patient_id": "P1", "age": 45, "scan_date": "2026-01-02", "contrast": True, "site": "Seoul"}
    assert table.rows["1001"] == {"patient_id": 1001, "age": 50.0, "scan_date": "2026-01-03T10:30:00", "contrast": False}
    assert table.duplicate_keys == ["P2"] and "P2" not in table.rows  # no row wins: the unit is held back
    assert table.row_problems == {"P2": [f"key 'P2' appears in rows 4 and 6 of {tmp_path / 'meta.xlsx'}; keep one row"]}
    assert table.row_for("P") is None  # no loose substring matching
    assert table.row_for("site_a/P1") == ("P1", table.rows["P1"])  # a nested key matches by its last part


def test_csv_key_column_and_errors(tmp_path):
    (tmp_path / "meta.csv").write_text("id,name,age\nu1,Ann,31\n", encoding="utf-8")
    table = read_metadata_table(tmp_path / "meta.csv", key_column="name")
    assert table.rows == {"Ann": {"id": "u1", "name": "Ann", "age": "31"}}
    with pytest.raises(MetadataError, match="has no column 'nope'"):
        read_metadata_table(tmp_path / "meta.csv", key_column="nope")
    with pytest.raises(MetadataError, match="not found .* fix metadata.excel_path"):
        find_metadata_file(tmp_path, "other.xlsx")
    (tmp_path / "bad.xlsx").write_bytes(b"not a zip")
    with pytest.raises(MetadataError, match="is not a valid .xlsx"):
        read_metadata_table(tmp_path / "bad.xlsx")


def test_sheet_path_resolution_order(tmp_path):
    batch, storage = tmp_path / "batch", tmp_path / "storage"
    for folder in (batch, storage / "sheets", batch / "sheets"):
        folder.mkdir(parents=True)
    (batch / "sheets" / "m.csv").write_text("k\n")
    assert find_metadata_file(batch, "sheets/m.csv", storage_root=storage) == batch / "sheets" / "m.csv"
    (storage / "sheets" / "m.csv").write_text("k\n")
    assert find_metadata_file(batch, "sheets/m.csv", storage_root=storage) == storage / "sheets" / "m.csv"
    assert find_metadata_file(batch, str(batch / "sheets" / "m.csv"), storage_root=storage) == batch / "sheets" / "m.csv"


@pytest.mark.parametrize(
    ("value", "types", "fmt", "expected"),
    [("45", ["integer"], None, 45), (45.0, ["integer"], None, 45), ("yes", ["boolean"], None, True),
     (0, ["boolean"], None, False), (1001, ["string"], None, "1001"), (3.5, ["string"], None, "3.5"),
     ("2.5", ["number"], None, 2.5), (7, ["integer", "null"], None, 7), ("x", [], None, "x"),
     ("2026/11/03", ["string"], "date", "2026-11-03"), (dt.date(2026, 1, 2), ["string"], "date", "2026-01-02"),
     (dt.datetime(2026, 1, 2, 3, 4), ["string"], "date-time", "2026-01-02T03:04:00"),
     ("2026-01-02 03:04:05", ["string"], "date-time", "2026-01-02T03:04:05")],
)
def test_coercion_to_declared_types(value, types, fmt, expected):
    coerced = coerce_value(value, types, fmt)
    assert coerced == expected and type(coerced) is type(expected)


@pytest.mark.parametrize(("value", "types"), [("unknown", ["integer"]), ("maybe", ["boolean"]), ("4.5", ["integer"])])
def test_uncoercible_values_raise(value, types):
    with pytest.raises(ValueError, match="cannot be read as"):
        coerce_value(value, types)


def test_precedence_provenance_and_conflicts():
    sources = [
        SourceValues("sidecar", "sidecar P2/meta.yaml", {"age": 46, "note": "rescan"}),
        SourceValues("sheet", "sheet meta.xlsx", {"age": "45", "sex": "male"}),
        SourceValues("static", "static", {"site": "A", "sex": "female"}),
        SourceValues("directory", "folder name", {"folder": "P2"}),
    ]
    built = build_unit_meta(sources, dataset_key="b/P2", schema=SCHEMA)
    assert built.meta == {"site": "A", "sex": "male", "folder": "P2", "age": 46, "note": "rescan", "dataset_key": "b/P2"}
    assert built.provenance == {"site": "static", "sex": "sheet meta.xlsx", "folder": "folder name",
                                "age": "sidecar P2/meta.yaml", "note": "sidecar P2/meta.yaml", "dataset_key": "pipeline"}
    assert built.notes == [
        "field 'sex': static says 'female', sheet meta.xlsx says 'male'; sheet meta.xlsx wins",
        "field 'age': sheet meta.xlsx says '45', sidecar P2/meta.yaml says 46; sidecar P2/meta.yaml wins",
    ]
    reversed_order = ("static", "directory", "path", "filename", "sidecar", "sheet")
    assert build_unit_meta(sources, dataset_key="k", schema=SCHEMA, precedence=reversed_order).meta["age"] == 45


def test_uncoercible_value_names_field_value_and_source():
    built = build_unit_meta([SourceValues("sheet", "sheet meta.xlsx", {"age": "unknown", "dataset_key": "x"})],
                            dataset_key="b/P2", schema=SCHEMA)
    assert built.problems == [
        "sheet meta.xlsx sets 'dataset_key', which identifies the unit and is set by the pipeline (dataset_key_template); "
        "rename that field",
        "field 'age' = 'unknown' (from sheet meta.xlsx) cannot be read as integer",
    ]


def test_sidecars_parse_json_and_yaml_with_dates():
    assert read_sidecar("m.yaml", b"age: 45\nscan_date: 2026-01-02\n") == {"age": 45, "scan_date": "2026-01-02"}
    assert read_sidecar("m.json", b'{"contrast": true}') == {"contrast": True}
    with pytest.raises(ValueError, match="must hold an object"):
        read_sidecar("m.yaml", b"- a\n- b\n")


def test_all_schema_errors_reported():
    errors = meta_errors({"age": -1, "scan_date": "yesterday", "contrast": "y"}, SCHEMA)
    assert errors == [
        "meta: 'patient_id' is a required property",
        "meta.age: -1 is less than the minimum of 0",
        "meta.contrast: 'y' is not of type 'boolean'",
        "meta.scan_date: 'yesterday' is not a 'date'",
    ]
    with pytest.raises(SchemaError, match="not a valid JSON Schema"):
        meta_errors({}, {"type": "nonsense"})


def test_legacy_xls_keeps_numbers_dates_and_booleans(tmp_path):
    import xlwt

    book = xlwt.Workbook()
    sheet_ = book.add_sheet("patients")
    date_style = xlwt.easyxf(num_format_str="YYYY-MM-DD")
    for col, value in enumerate(["patient_id", "age", "scan_date", "contrast"]):
        sheet_.write(0, col, value)
    sheet_.write(1, 0, "P1")
    sheet_.write(1, 1, 45)
    sheet_.write(1, 2, dt.date(2026, 3, 4), date_style)
    sheet_.write(1, 3, True)
    book.save(str(tmp_path / "meta.xls"))
    table = read_metadata_table(find_metadata_file(tmp_path, None))
    assert table.rows["P1"] == {"patient_id": "P1", "age": 45.0, "scan_date": "2026-03-04", "contrast": True}
    built = build_unit_meta([SourceValues("sheet", "sheet meta.xls", table.rows["P1"])], dataset_key="k", schema=SCHEMA)
    assert built.meta["age"] == 45 and type(built.meta["age"]) is int and built.problems == []
