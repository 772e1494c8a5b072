"""Metadata sheets are untrusted: a sheet that cannot be used at all stops the batch with one line naming it (its
units' meta comes from it, so nothing is sent half-described); a bad row holds back only its unit."""

from __future__ import annotations

import io

import openpyxl
import pytest

from synapse_dagster_tests.bad_input.harness import GOOD, assert_clear, good_batch, ingest, unit_files

ROWS = [["patient_id", "age", "sex"], *[[pid, 40 + i, "FM"[i % 2]] for i, pid in enumerate(GOOD)]]


@pytest.fixture
def batch(tmp_path):
    folder = good_batch(tmp_path / "incoming")
    (folder / "meta.csv").unlink()
    return folder


def xlsx(path, sheets: dict[str, list[list]]):
    book = openpyxl.Workbook()
    book.remove(book.active)
    for name, rows in sheets.items():
        sheet = book.create_sheet(name)
        for row in rows:
            sheet.append(row)
    book.save(path)
    return path


def encrypted(path):
    from msoffcrypto.format.ooxml import OOXMLFile

    plain, out = xlsx(path.with_name("plain.xlsx"), {"Sheet1": ROWS}), io.BytesIO()
    with plain.open("rb") as handle:
        OOXMLFile(handle).encrypt("secret", out)
    plain.unlink()
    path.write_bytes(out.getvalue())


SHEET_ERRORS = {  # what makes the whole sheet unusable -> what the one line says
    "corrupt": (lambda p: p.write_bytes(b"PK\x03\x04" + b"\0" * 50), "meta.xlsx is not a valid .xlsx"),
    "truncated": (lambda p: p.write_bytes(xlsx(p, {"S": ROWS}).read_bytes()[:400]), "(truncated or corrupt)"),
    "encrypted": (encrypted, "meta.xlsx is password-protected; save a copy without a password"),
    "several worksheets": (lambda p: xlsx(p, {"Patients": ROWS, "Lists": [["a"], ["b"]]}),
                           "has several worksheets with data ('Patients', 'Lists'); set metadata.worksheet"),
    "blank header over values": (lambda p: xlsx(p, {"S": [["patient_id", None, "sex"], ["P0001", 40, "F"]]}),
                                 "column B holds values (row 2) but has no name in header row 1"),
    "no key column": (lambda p: xlsx(p, {"S": [["id", "age"], ["P0001", 3]]}), "has no column 'patient_id'"),
}


@pytest.mark.parametrize("case", sorted(SHEET_ERRORS))
def test_an_unusable_sheet_stops_the_batch_with_one_line(tmp_path, synapse_env, collection, batch, case):
    make, expected = SHEET_ERRORS[case]
    make(batch / "meta.xlsx")
    landing = ingest(tmp_path, synapse_env, collection)
    assert_clear(landing, expected, landed=())
    assert not landing.success


def test_a_named_worksheet_is_read(tmp_path, synapse_env, collection, batch):
    xlsx(batch / "meta.xlsx", {"Lists": [["x"], ["y"]], "Patients": ROWS})
    landing = ingest(tmp_path, synapse_env, collection, metadata={"key_column": "patient_id", "worksheet": "Patients"})
    assert_clear(landing)


def test_a_missing_named_worksheet_lists_the_worksheets(tmp_path, synapse_env, collection, batch):
    xlsx(batch / "meta.xlsx", {"Patients": ROWS})
    landing = ingest(tmp_path, synapse_env, collection, metadata={"key_column": "patient_id", "worksheet": "Visits"})
    assert_clear(landing, "has no worksheet 'Visits' (worksheets: 'Patients'); fix metadata.worksheet", landed=())


def test_duplicate_keys_hold_back_every_unit_they_name(tmp_path, synapse_env, collection, batch):
    unit_files(batch / "P0006")
    xlsx(batch / "meta.xlsx", {"S": [*ROWS, ["P0006", 30, "F"], ["P0006", 31, "M"]]})
    landing = ingest(tmp_path, synapse_env, collection)
    assert_clear(landing, "key 'P0006' appears in rows 7 and 8 of", "keep one row")


def test_a_formula_without_a_saved_value_holds_back_its_row(tmp_path, synapse_env, collection, batch):
    unit_files(batch / "P0006")
    xlsx(batch / "meta.xlsx", {"S": [*ROWS, ["P0006", "=SUM(B2,1)", "F"]]})
    landing = ingest(tmp_path, synapse_env, collection)
    assert_clear(landing, "column 'age' (B7): the formula =SUM(B2,1) has no saved value")


def test_a_utf8_csv_with_a_bom_is_read(tmp_path, synapse_env, collection, batch):
    (batch / "meta.csv").write_bytes("\ufeffpatient_id,age,sex\n".encode() +
                                     "".join(f"{p},{40 + i},F\n" for i, p in enumerate(GOOD)).encode())
    assert_clear(ingest(tmp_path, synapse_env, collection))


def test_a_cp1252_csv_is_detected_and_noted(tmp_path, synapse_env, collection, batch):
    rows = "patient_id,age,sex,site\n" + "".join(f"{p},{40 + i},F,Zürich Café née\n" for i, p in enumerate(GOOD))
    (batch / "meta.csv").write_bytes(rows.encode("cp1252"))
    landing = ingest(tmp_path, synapse_env, collection)
    assert_clear(landing)
    assert {u["meta"]["site"] for u in landing.units} == {"Zürich Café née"}


def test_a_csv_with_a_nul_byte_names_the_line(tmp_path, synapse_env, collection, batch):
    (batch / "meta.csv").write_bytes(b"patient_id,age,sex\nP0001,40,F\nP0002,4\x001,M\n")
    landing = ingest(tmp_path, synapse_env, collection)
    assert_clear(landing, "line 3 contains a NUL byte", landed=())


def test_a_unit_without_a_sheet_row_is_held_back_for_its_missing_meta(tmp_path, synapse_env, collection, batch):
    unit_files(batch / "P0006")
    xlsx(batch / "meta.xlsx", {"S": ROWS})
    landing = ingest(tmp_path, synapse_env, collection)
    assert_clear(landing, "held back P0006")
