import datetime as dt

import openpyxl
import pytest

from synapse_dagster.core.grouping import group_files
from synapse_dagster.core.inventory import list_local
from synapse_dagster.core.metadata import (
    MetadataError,
    build_unit_meta,
    coerce_value,
    find_metadata_file,
    read_metadata_table,
)
from synapse_dagster.core.plan import plan_batch
from synapse_dagster.core.specs import CollectionSpecs
from synapse_dagster.core.validation import SchemaError, meta_errors
from synapse_dagster.pipeline_config import GroupBy

SCHEMA = {
    "type": "object",
    "required": ["patient_id", "age"],
    "properties": {
        "patient_id": {"type": "string"},
        "age": {"type": "integer", "minimum": 0},
        "scan_date": {"type": "string", "format": "date"},
        "contrast": {"type": "boolean"},
        "weight": {"type": "number"},
    },
}


def sheet(path, rows):
    wb = openpyxl.Workbook()
    for row in rows:
        wb.active.append(row)
    wb.save(path)
    return path


def test_excel_keeps_types_and_matches_keys_exactly(tmp_path):
    sheet(tmp_path / "meta.xlsx", [
        ["patient_id", "age", "scan_date", "contrast", "site"],
        ["P1", 45, dt.datetime(2026, 1, 2), True, " Seoul "],
        [1001, 50.0, dt.datetime(2026, 1, 3, 10, 30), False, None],
        ["P1", 99, None, None, None],
        [None, None, None, None, None],
    ])
    table = read_metadata_table(find_metadata_file(tmp_path, None))
    assert table.key_column == "patient_id"
    assert table.rows["P1"] == {"patient_id": "P1", "age": 45, "scan_date": "2026-01-02", "contrast": True, "site": "Seoul"}
    assert table.rows["1001"] == {"patient_id": 1001, "age": 50.0, "scan_date": "2026-01-03T10:30:00", "contrast": False}
    assert table.duplicate_keys == ["P1"]
    assert table.row_for("P") is None  # no loose substring matching


def test_csv_and_key_column_and_errors(tmp_path):
    (tmp_path / "meta.csv").write_text("id,name,age\nu1,Ann,31\n", encoding="utf-8")
    table = read_metadata_table(tmp_path / "meta.csv", key_column="name")
    assert table.rows == {"Ann": {"id": "u1", "name": "Ann", "age": "31"}}
    with pytest.raises(MetadataError, match="has no column 'nope'"):
        read_metadata_table(tmp_path / "meta.csv", key_column="nope")
    with pytest.raises(MetadataError, match="not found .* fix metadata.excel_path"):
        find_metadata_file(tmp_path, "other.xlsx")
    (tmp_path / "bad.xlsx").write_bytes(b"not a zip")
    with pytest.raises(MetadataError, match="cannot be read"):
        read_metadata_table(tmp_path / "bad.xlsx")


@pytest.mark.parametrize(
    ("value", "types", "expected"),
    [("45", ["integer"], 45), (45.0, ["integer"], 45), ("yes", ["boolean"], True), (0, ["boolean"], False),
     (1001, ["string"], "1001"), (3.5, ["string"], "3.5"), ("2.5", ["number"], 2.5), (7, ["integer", "null"], 7),
     ("x", [], "x")],
)
def test_coercion_to_declared_types(value, types, expected):
    assert coerce_value(value, types) == expected and type(coerce_value(value, types)) is type(expected)


def test_uncoercible_value_names_unit_field_value_and_source():
    built = build_unit_meta(group_key="P2", dataset_key="b/P2", sheet_row={"age": "unknown"}, sheet_name="meta.xlsx",
                            directory_field="folder", static={"site": "A"}, schema=SCHEMA)
    assert built.problems == ["field 'age' = 'unknown' (from sheet meta.xlsx) cannot be read as integer"]
    assert built.meta["folder"] == "P2" and built.meta["dataset_key"] == "b/P2"
    assert built.provenance == {"site": "static", "folder": "directory", "age": "sheet meta.xlsx", "dataset_key": "pipeline"}


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


def test_plan_holds_back_bad_units_and_keeps_the_rest(tmp_path):
    specs = CollectionSpecs.from_api({"id": 1, "name": "c", "meta": {"data_unit_meta_schema": SCHEMA},
        "file_specifications": [{"name": "image_1", "extensions": [".png"], "is_required": True}]})
    for unit in ["P1", "P2", "P3", "P4"]:
        (tmp_path / unit).mkdir()
        (tmp_path / unit / "scan.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"0" * 100)
    (tmp_path / "P4" / "scan.png").write_bytes(b"<html><script>x</script>")
    sheet(tmp_path / "meta.xlsx", [["patient_id", "age"], ["P1", 40], ["P2", "old"], ["P4", 3], ["P9", 1]])
    table = read_metadata_table(tmp_path / "meta.xlsx")
    grouping = group_files(list_local(tmp_path), specs, GroupBy.SUBDIRECTORY, reserved={"meta.xlsx": "metadata sheet"})
    from synapse_dagster.core.screening import unsafe_reason

    plan = plan_batch(grouping, specs, pipeline="p", batch="b1", dataset_key_template="{pipeline}:{batch}:{group_key}",
                      sheet=table, max_file_bytes=2**20, screen=unsafe_reason)
    by_key = {u.group_key: u for u in plan.units}
    assert [u.group_key for u in plan.valid_units] == ["P1"]
    assert by_key["P1"].meta == {"age": 40, "patient_id": "P1", "dataset_key": "p:b1:P1"}
    assert by_key["P2"].problems == ["field 'age' = 'old' (from sheet meta.xlsx) cannot be read as integer"]
    assert by_key["P3"].problems == ["meta: 'patient_id' is a required property", "meta: 'age' is a required property"]
    assert len(by_key["P4"].problems) == 1 and "SDK content guard" in by_key["P4"].problems[0]
    assert "TYPE_MISMATCH" in by_key["P4"].problems[0]
    assert plan.sheet_rows_without_unit == ["P9"] and plan.units_without_sheet_row == ["P3"]
    assert plan.invalid_fraction == 0.75


def test_file_over_size_limit_is_a_problem(tmp_path):
    specs = CollectionSpecs.from_api({"id": 1, "name": "c", "file_specifications": [{"name": "d", "extensions": [".bin"], "is_required": True}]})
    (tmp_path / "u").mkdir()
    (tmp_path / "u" / "big.bin").write_bytes(b"0" * 3000)
    grouping = group_files(list_local(tmp_path), specs, GroupBy.SUBDIRECTORY)
    plan = plan_batch(grouping, specs, pipeline="p", batch="b", dataset_key_template="{group_key}", max_file_bytes=2048)
    assert plan.units[0].problems == ["file u/big.bin (d) is 0.0 MiB, over the 0 MiB limit (max_file_size_mb)"]
