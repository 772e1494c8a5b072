"""Metadata sheets are untrusted input: every problem is one message naming the file, the place and the fix.

Sheet-level problems (a broken, encrypted or mislabelled file, an ambiguous worksheet, a bad header, an
undetectable encoding, a sheet past a limit) raise ``MetadataError``; row-level ones (a formula with no value,
an error value, a key on several rows) hold back only that row's key, and the other rows stay intact.
"""

from __future__ import annotations

import io
import re
import zipfile

import openpyxl
import pytest
import xlwt

from synapse_dagster.config.models import MetadataConfig, PipelineConfig
from synapse_dagster.core.meta.sheet_files import MAX_SHEET_BYTES, SheetSettings, load_sheet
from synapse_dagster.core.meta.sheets import MetadataError, SheetLimits, read_metadata_table
from synapse_dagster.core.sources.files import SourceFile
from synapse_dagster.core.sources.location import parse_source
from synapse_dagster.core.sources.options import ConnectionOptions
from synapse_dagster.core.sources.roots import SourceRoot, list_roots, resolve_roots
from synapse_dagster_tests.core.tables import sheet, with_cells

ROWS = [["id", "age", "site"], ["P1", 41, "A"], ["P2", 42, "B"], ["P3", 43, "C"]]


def workbook(path, sheets, *, hidden=()):
    """An .xlsx or .xls with the given worksheets (name -> rows); ``hidden`` ones are hidden."""
    if path.suffix == ".xls":
        book = xlwt.Workbook()
        for name, rows in sheets.items():
            ws = book.add_sheet(name)
            ws.visibility = int(name in hidden)
            for r, row in enumerate(rows):
                for c, value in enumerate(row):
                    if value is not None:
                        ws.write(r, c, value)
        book.save(str(path))
        return path
    book = openpyxl.Workbook()
    book.remove(book.active)
    for name, rows in sheets.items():
        ws = book.create_sheet(name)
        ws.sheet_state = "hidden" if name in hidden else "visible"
        for row in rows:
            ws.append(row)
    book.save(path)
    return path


def one_line(message):
    assert "\n" not in message and "Traceback" not in message
    return message


# --- broken, encrypted and mislabelled files -----------------------------------------------------------------


def _encrypted(tmp_path):
    from msoffcrypto.format.ooxml import OOXMLFile

    out = io.BytesIO()
    with sheet(tmp_path / "plain.xlsx", ROWS).open("rb") as handle:
        OOXMLFile(handle).encrypt("secret", out)
    return out.getvalue()


def _truncated(tmp_path):
    data = sheet(tmp_path / "whole.xlsx", ROWS).read_bytes()
    return data[: len(data) // 2]


def _corrupt_member(tmp_path):
    """A whole zip whose worksheet data is damaged mid-stream: the CRC or the XML fails while rows are read."""
    path = sheet(tmp_path / "whole.xlsx", [["id", "note"]] + [[f"P{i}", f"note {i} " * 5] for i in range(3000)])
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("xl/worksheets/sheet1.xml")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra) + info.compress_size // 2
    data[start:start + 64] = bytes(b ^ 0x5A for b in data[start:start + 64])
    return bytes(data)


def _legacy_xls(tmp_path):
    return workbook(tmp_path / "legacy.xls", {"one": ROWS}).read_bytes()


def _xlsx_bytes(tmp_path):
    return sheet(tmp_path / "real.xlsx", ROWS).read_bytes()


@pytest.mark.parametrize(("name", "content", "expected"), [
    ("meta.xlsx", lambda _: b"id,age\nP1,41\n",
     "is not a valid .xlsx (it is a text file; if it holds CSV, name it .csv); re-save it from Excel as .xlsx or .csv"),
    ("meta.xlsx", _truncated, "is not a valid .xlsx (truncated or corrupt); re-save it from Excel as .xlsx or .csv"),
    ("meta.xlsx", _corrupt_member, "is not a valid .xlsx (truncated or corrupt)"),
    ("meta.xlsx", _encrypted, "is password-protected; save a copy without a password"),
    ("meta.xls", _encrypted, "is password-protected; save a copy without a password"),
    ("meta.xlsx", _legacy_xls, "is an older .xls workbook, not an .xlsx; rename it to .xls"),
    ("meta.xls", lambda _: b"<html><body><table><tr><td>id</td></tr></table></body></html>",
     "is not a valid .xls (it is an HTML page); re-save it from Excel as .xlsx or .csv"),
    ("meta.xls", _xlsx_bytes, "is an .xlsx workbook with an .xls name; rename it to .xlsx"),
    ("meta.xls", lambda _: bytes.fromhex("D0CF11E0A1B11AE1") + b"\x00" * 600, "is not a valid .xls (truncated or corrupt)"),
    ("meta.csv", _xlsx_bytes, "is an Excel workbook with a .csv name; rename it to .xlsx"),
    ("meta.xlsx", lambda _: b"", "is empty (0 bytes)"),
    ("meta.csv", lambda _: b"", "is empty (0 bytes)"),
], ids=["not-a-zip", "truncated-zip", "corrupt-member", "encrypted-xlsx", "encrypted-as-xls", "xls-named-xlsx",
        "html-named-xls", "xlsx-named-xls", "broken-ole-xls", "xlsx-named-csv", "empty-xlsx", "empty-csv"])
def test_unusable_file_is_one_message_naming_it(tmp_path, name, content, expected):
    path = tmp_path / name
    path.write_bytes(content(tmp_path))
    with pytest.raises(MetadataError) as err:
        read_metadata_table(path)
    assert one_line(str(err.value)).startswith(f"metadata file {path} {expected}")
    assert err.value.__context__ is None  # no library exception kept alive (see sheet_rows.guarded)


def test_message_names_the_path_as_given(tmp_path, monkeypatch):
    (tmp_path / "meta.xlsx").write_bytes(b"not a workbook")
    monkeypatch.chdir(tmp_path)
    from pathlib import Path

    with pytest.raises(MetadataError, match=r"^metadata file meta\.xlsx is not a valid \.xlsx"):
        read_metadata_table(Path("meta.xlsx"))
    with pytest.raises(MetadataError, match=r"^metadata file s3://bucket/b1/meta\.xlsx is not a valid"):
        read_metadata_table(Path("meta.xlsx"), label="s3://bucket/b1/meta.xlsx")


# --- worksheets ----------------------------------------------------------------------------------------------

NOTES = [["Filled in by the site coordinator"], ["see the Patients sheet"]]


@pytest.mark.parametrize("suffix", [".xlsx", ".xls"])
@pytest.mark.parametrize("wanted", ["Patients", " patients "])
def test_named_worksheet_is_read(tmp_path, suffix, wanted):
    path = workbook(tmp_path / f"meta{suffix}", {"Notes": NOTES, "Patients": ROWS})
    table = read_metadata_table(path, worksheet=wanted)
    assert table.worksheet == "Patients" and sorted(table.rows) == ["P1", "P2", "P3"]


@pytest.mark.parametrize("suffix", [".xlsx", ".xls"])
def test_missing_worksheet_lists_the_worksheets_there_are(tmp_path, suffix):
    path = workbook(tmp_path / f"meta{suffix}", {"Notes": NOTES, "Patients": ROWS})
    with pytest.raises(MetadataError) as err:
        read_metadata_table(path, worksheet="Visits")
    assert one_line(str(err.value)) == (f"metadata file {path} has no worksheet 'Visits' (worksheets: 'Notes', "
                                        "'Patients'); fix metadata.worksheet")


@pytest.mark.parametrize("suffix", [".xlsx", ".xls"])
def test_the_only_worksheet_with_data_is_used(tmp_path, suffix):
    path = workbook(tmp_path / f"meta{suffix}", {"Sheet1": [], "Patients": ROWS, "Blank": [["   ", None]]})
    table = read_metadata_table(path)
    assert table.worksheet == "Patients" and table.rows["P2"] == {"id": "P2", "age": 42, "site": "B"}


@pytest.mark.parametrize("suffix", [".xlsx", ".xls"])
def test_several_worksheets_with_data_need_metadata_worksheet(tmp_path, suffix):
    path = workbook(tmp_path / f"meta{suffix}", {"Patients": ROWS, "Empty": [], "Lists": [["male"], ["female"]]},
                    hidden=("Lists",))
    with pytest.raises(MetadataError) as err:
        read_metadata_table(path)
    assert one_line(str(err.value)) == (f"metadata file {path} has several worksheets with data ('Patients', "
                                        "'Lists' (hidden)); set metadata.worksheet to the one to read")


def test_messages_name_the_worksheet_of_a_workbook_with_several(tmp_path):
    path = workbook(tmp_path / "meta.xlsx", {"Notes": NOTES, "Patients": ROWS + [["P1", 44, "D"]]})
    table = read_metadata_table(path, worksheet="Patients")
    assert table.row_problems["P1"] == [f"key 'P1' appears in rows 2 and 5 of {path} (worksheet 'Patients'); keep one row"]


def test_worksheet_and_encoding_settings_reach_the_reader(tmp_path):
    config = PipelineConfig(name="p", data_collection=1, storage=1, source={"path": str(tmp_path)},
                            metadata=MetadataConfig(worksheet="Patients", encoding="cp949"))
    settings = config.sheet_settings()
    assert (settings.worksheet, settings.encoding) == ("Patients", "cp949")
    workbook(tmp_path / "meta.xlsx", {"Notes": NOTES, "Patients": ROWS})
    roots = resolve_roots(config.source_settings(), owner="pipeline 'p'", base_dir=tmp_path)
    table = load_sheet(settings, list(list_roots(roots)), roots, None)
    assert table.worksheet == "Patients" and table.path == str(tmp_path / "meta.xlsx") and len(table.rows) == 3
    (tmp_path / "meta.xlsx").unlink()
    (tmp_path / "meta.csv").write_bytes("id,이름\nP1,홍길동\n".encode("cp949"))
    table = load_sheet(settings, list(list_roots(roots)), roots, None)
    assert table.rows == {"P1": {"id": "P1", "이름": "홍길동"}} and table.notes == []


# --- formulas ------------------------------------------------------------------------------------------------


def test_formula_cells_give_their_cached_value(tmp_path):
    path = with_cells(sheet(tmp_path / "meta.xlsx", ROWS), {"B2": '<c r="B2"><f>40+1</f><v>41</v></c>',
                                                           "C3": '<c r="C3" t="str"><f>"B"&amp;""</f><v>B</v></c>'})
    table = read_metadata_table(path)
    assert table.rows["P1"]["age"] == 41 and table.rows["P2"]["site"] == "B" and table.row_problems == {}


def test_formula_without_saved_value_holds_back_only_its_row(tmp_path):
    path = with_cells(sheet(tmp_path / "meta.xlsx", ROWS), {"B3": '<c r="B3"><f>SUM(B2,1)</f></c>'})
    table = read_metadata_table(path)
    assert table.row_problems == {"P2": [
        f"row 3 of {path}, column 'age' (B3): the formula =SUM(B2,1) has no saved value (the file was written by a "
        "program and never saved in Excel); open and save it in Excel, or type the value"]}
    assert table.rows == {"P1": {"id": "P1", "age": 41, "site": "A"}, "P3": {"id": "P3", "age": 43, "site": "C"}}


@pytest.mark.parametrize("error", ["#DIV/0!", "#N/A", "#REF!", "#VALUE!", "#NAME?", "#NUM!", "#NULL!"])
def test_error_value_holds_back_only_its_row(tmp_path, error):
    path = with_cells(sheet(tmp_path / "meta.xlsx", ROWS), {"B4": f'<c r="B4" t="e"><f>B3/0</f><v>{error}</v></c>'})
    table = read_metadata_table(path)
    assert table.row_problems == {"P3": [f"row 4 of {path}, column 'age' (B4): the formula =B3/0 gives {error}; "
                                         "fix the formula or type the value"]}
    assert sorted(table.rows) == ["P1", "P2"] and table.rows["P2"]["age"] == 42


def test_error_value_in_a_legacy_xls_holds_back_its_row(tmp_path):
    book = xlwt.Workbook()
    ws = book.add_sheet("Patients")
    for r, row in enumerate(ROWS):
        for c, value in enumerate(row):
            if (r, c) != (2, 1):
                ws.write(r, c, value)
    ws.row(2).set_cell_error(1, "#DIV/0!")
    book.save(str(tmp_path / "meta.xls"))
    table = read_metadata_table(tmp_path / "meta.xls")
    assert table.row_problems == {"P2": [f"row 3 of {tmp_path / 'meta.xls'}, column 'age' (B3): the cell holds the "
                                         "error #DIV/0!; fix the formula or type the value"]}
    assert sorted(table.rows) == ["P1", "P3"]


def test_key_that_is_an_unsaved_formula_is_a_sheet_error(tmp_path):
    path = with_cells(sheet(tmp_path / "meta.xlsx", ROWS), {"A3": '<c r="A3"><f>"P"&amp;2</f></c>'})
    with pytest.raises(MetadataError) as err:
        read_metadata_table(path)
    assert one_line(str(err.value)).startswith(f"metadata file {path} row 3: the key cell A3 cannot be matched to a "
                                               'unit: the formula ="P"&2 has no saved value')


def test_header_that_is_an_unsaved_formula_is_a_sheet_error(tmp_path):
    path = with_cells(sheet(tmp_path / "meta.xlsx", ROWS), {"C1": '<c r="C1"><f>"si"&amp;"te"</f></c>'})
    with pytest.raises(MetadataError, match=re.escape(f"metadata file {path}: header cell C1: the formula")):
        read_metadata_table(path)


# --- headers -------------------------------------------------------------------------------------------------


def test_leading_blank_rows_are_skipped_and_rows_keep_their_spreadsheet_numbers(tmp_path):
    book = openpyxl.Workbook()
    for r, row in enumerate(ROWS + [["P2", 1, "Z"]], start=3):
        for c, value in enumerate(row, start=1):
            book.active.cell(row=r, column=c, value=value)
    book.save(tmp_path / "meta.xlsx")
    table = read_metadata_table(tmp_path / "meta.xlsx")
    assert table.columns == ["id", "age", "site"] and sorted(table.rows) == ["P1", "P3"]
    assert table.row_problems["P2"] == [f"key 'P2' appears in rows 5 and 7 of {tmp_path / 'meta.xlsx'}; keep one row"]


def test_a_stale_dimension_does_not_hide_rows(tmp_path):
    """Scripts often write <dimension ref="A1"/>; the streamed reader must not trust it."""
    path = sheet(tmp_path / "meta.xlsx", ROWS)
    with zipfile.ZipFile(path) as archive:
        parts = {info.filename: archive.read(info.filename) for info in archive.infolist()}
    parts["xl/worksheets/sheet1.xml"] = re.sub(rb'<dimension ref="[^"]*" ?/>', b'<dimension ref="A1"/>',
                                               parts["xl/worksheets/sheet1.xml"])
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in parts.items():
            archive.writestr(name, data)
    assert sorted(read_metadata_table(path).rows) == ["P1", "P2", "P3"]


def test_merged_header_leaves_a_named_column_error(tmp_path):
    book = openpyxl.Workbook()
    for row in [["id", "scan", None], ["P1", "2026-01-02", "CT"], ["P2", "2026-01-03", "MR"]]:
        book.active.append(row)
    book.active.merge_cells("B1:C1")
    book.save(tmp_path / "meta.xlsx")
    with pytest.raises(MetadataError) as err:
        read_metadata_table(tmp_path / "meta.xlsx")
    assert one_line(str(err.value)) == (f"metadata file {tmp_path / 'meta.xlsx'}: column C holds values (row 2) but "
                                        "has no name in header row 1; name it (merged header cells often leave a "
                                        "column without one)")


def test_blank_header_over_values_in_a_csv(tmp_path):
    (tmp_path / "meta.csv").write_text("id,,site\nP1,,A\nP2,x,B\n", encoding="utf-8")
    with pytest.raises(MetadataError, match=re.escape("column B holds values (row 3) but has no name in header row 1")):
        read_metadata_table(tmp_path / "meta.csv")


@pytest.mark.parametrize("suffix", [".xlsx", ".csv"])
def test_blank_header_over_an_empty_column_is_ignored(tmp_path, suffix):
    rows = [["id", None, "site"], ["P1", None, "A"], ["P2", "  ", "B"]]
    path = tmp_path / f"meta{suffix}"
    if suffix == ".csv":
        path.write_text("\n".join(",".join(v or "" for v in row) for row in rows) + "\n", encoding="utf-8")
    else:
        sheet(path, rows)
    table = read_metadata_table(path)
    assert table.columns == ["id", "site"] and table.rows == {"P1": {"id": "P1", "site": "A"},
                                                              "P2": {"id": "P2", "site": "B"}}


def test_column_names_that_repeat_after_normalizing_are_an_error(tmp_path):
    sheet(tmp_path / "meta.xlsx", [["id", "Cafe\u0301", " Café "], ["P1", 1, 2]])
    with pytest.raises(MetadataError) as err:
        read_metadata_table(tmp_path / "meta.xlsx")
    assert one_line(str(err.value)) == (f"metadata file {tmp_path / 'meta.xlsx'} repeats the column name 'Café' "
                                        "(columns B, C) in row 1; give every column a unique name")


def test_header_text_is_stripped_and_nfc_normalized(tmp_path):
    (tmp_path / "meta.csv").write_text(" Patient\u00a0ID ,Cafe\u0301 \nP1,yes\n", encoding="utf-8")
    table = read_metadata_table(tmp_path / "meta.csv", key_column="Cafe\u0301")
    assert table.columns == ["Patient\u00a0ID", "Café"] and table.key_column == "Café"
    assert table.rows == {"yes": {"Patient\u00a0ID": "P1", "Café": "yes"}}


# --- encodings -----------------------------------------------------------------------------------------------

TEXT = "id,이름,note\nP1,홍길동,Café\nP2,Zoë,naïve\n"


@pytest.mark.parametrize(("encoding", "prefix"), [
    ("utf-8", b"\xef\xbb\xbf"), ("utf-16-le", b"\xff\xfe"), ("utf-16-be", b"\xfe\xff"), ("utf-32-le", b"\xff\xfe\x00\x00"),
    ("utf-8", b""),
], ids=["utf-8-bom", "utf-16-le-bom", "utf-16-be-bom", "utf-32-le-bom", "utf-8"])
def test_unicode_csv_is_read_by_its_byte_order_mark_or_as_utf8(tmp_path, encoding, prefix):
    (tmp_path / "meta.csv").write_bytes(prefix + TEXT.replace("\n", "\r\n").encode(encoding))
    table = read_metadata_table(tmp_path / "meta.csv")
    assert table.columns == ["id", "이름", "note"] and table.notes == []
    assert table.rows == {"P1": {"id": "P1", "이름": "홍길동", "note": "Café"}, "P2": {"id": "P2", "이름": "Zoë", "note": "naïve"}}


@pytest.mark.parametrize(("encoding", "text", "detected"), [
    ("cp1252", "patient_id,name,note\nP1,José Núñez,señal débil\nP2,María López,Informe médico: pulmón normal\n",
     "cp1252"),
    ("latin-1", "id,name,remark\n" + "".join(f"P{i},Ångström Søren,très élevé à côté\n" for i in range(30)), "cp1252"),
    ("shift_jis", "患者番号,氏名,住所\nP1,山田太郎,東京都千代田区\nP2,佐藤花子,大阪府大阪市\n", "cp932"),
    ("cp949", "id,이름,주소\nP1,홍길동,서울특별시 강남구\nP2,김철수,부산광역시\n", "cp949"),
])
def test_non_utf8_csv_is_detected_and_noted(tmp_path, encoding, text, detected):
    path = tmp_path / "meta.csv"
    path.write_bytes(text.encode(encoding))
    table = read_metadata_table(path)
    header, *lines = [line.split(",") for line in text.splitlines()]
    assert table.rows == {line[0]: dict(zip(header, line)) for line in lines}
    assert table.notes == [f"{path} is not UTF-8; it was read as {detected} (detected, so possibly wrong: if its text "
                           "looks garbled, set metadata.encoding)"]


def test_configured_encoding_is_used_without_a_note(tmp_path):
    (tmp_path / "meta.csv").write_bytes("id,miasto\nP1,Łódź\n".encode("cp1250"))
    table = read_metadata_table(tmp_path / "meta.csv", encoding="cp1250")
    assert table.rows == {"P1": {"id": "P1", "miasto": "Łódź"}} and table.notes == []


def test_wrong_configured_encoding_names_the_line(tmp_path):
    (tmp_path / "meta.csv").write_bytes("id,name\nP1,Ann\nP2,Zoë\n".encode("cp1252"))
    with pytest.raises(MetadataError) as err:
        read_metadata_table(tmp_path / "meta.csv", encoding="utf-8")
    assert one_line(str(err.value)) == (f"metadata file {tmp_path / 'meta.csv'} line 3 cannot be read as utf-8; set "
                                        "metadata.encoding to the encoding it was saved in, or save it as 'CSV UTF-8'")


def test_undetectable_encoding_asks_for_metadata_encoding(tmp_path):
    (tmp_path / "meta.csv").write_bytes(bytes(range(0x80, 0x100)) * 20)
    with pytest.raises(MetadataError) as err:
        read_metadata_table(tmp_path / "meta.csv")
    assert one_line(str(err.value)).startswith(f"metadata file {tmp_path / 'meta.csv'} is not UTF-8 and its text "
                                               "encoding cannot be detected; set metadata.encoding")


@pytest.mark.parametrize(("content", "expected"), [
    (b"id,a\nP1,x\nP2,a\x00b\n", "line 3 contains a NUL byte, so it is not plain CSV text"),
    (b'id,a\nP1,"' + b"x" * 200_000 + b'"\n', "line 2: a field is longer than 131,072 characters (often a quote that "
                                              "is never closed)"),
    (b'id,a\nP1,ok\nP2,"never closed\nP3,c\n', "line 3: a quoted field that starts here is never closed"),
    (b'id,a\nP1,"x"y\n', """line 2 is not valid CSV (',' expected after '"')"""),
], ids=["nul", "field-limit", "unclosed-quote", "stray-quote"])
def test_broken_csv_names_the_line(tmp_path, content, expected):
    (tmp_path / "meta.csv").write_bytes(content)
    with pytest.raises(MetadataError) as err:
        read_metadata_table(tmp_path / "meta.csv")
    assert one_line(str(err.value)).startswith(f"metadata file {tmp_path / 'meta.csv'} {expected}")


# --- keys ----------------------------------------------------------------------------------------------------


def test_every_unit_whose_key_repeats_is_held_back(tmp_path):
    rows = [["patient_id", "age"]] + [[f"P000{i}", 40 + i] for i in range(1, 8)] + [["P0003", 99], ["P0005", 98],
                                                                                     ["P0005", 97]]
    path = sheet(tmp_path / "meta.xlsx", rows)
    table = read_metadata_table(path)
    assert table.duplicate_keys == ["P0003", "P0005"]
    assert table.row_problems == {"P0003": [f"key 'P0003' appears in rows 4 and 9 of {path}; keep one row"],
                                  "P0005": [f"key 'P0005' appears in rows 6, 10 and 11 of {path}; keep one row"]}
    assert sorted(table.rows) == ["P0001", "P0002", "P0004", "P0006", "P0007"]
    assert table.rows["P0004"] == {"patient_id": "P0004", "age": 44}
    assert table.row_for("P0003") is None and table.problems_for("site/P0003") == table.row_problems["P0003"]


def test_keys_that_differ_only_by_normalization_are_the_same_key(tmp_path):
    path = sheet(tmp_path / "meta.xlsx", [["key", "n"], ["Café", 1], ["Cafe\u0301", 2], [" Café\u00a0", 3], ["café", 4],
                                          [7, 5], [7.0, 6], ["7 ", 7]])
    table = read_metadata_table(path)
    assert table.row_problems == {
        "Café": [f"key 'Café' appears in rows 2, 3 and 4 of {path} (written 'Café', 'Cafe\\u0301', ' Café\\xa0'); "
                 "keep one row"],
        "7": [f"key '7' appears in rows 6, 7 and 8 of {path} (written 7, '7 '); keep one row"],
    }
    assert table.rows == {"café": {"key": "café", "n": 4}}  # case is not normalization: 'café' is its own key
    assert table.key_for("Cafe\u0301") == "Café"  # a decomposed folder name (macOS) finds its key


def test_rows_with_values_but_no_key_are_noted(tmp_path):
    path = sheet(tmp_path / "meta.xlsx", [["id", "age"], ["P1", 41], [None, 42], ["  ", 43]])
    table = read_metadata_table(path)
    assert table.rows == {"P1": {"id": "P1", "age": 41}}
    assert table.notes == [f"rows 3 and 4 of {path} hold values but no id; they match no unit"]


# --- limits --------------------------------------------------------------------------------------------------


def test_local_sheet_over_the_size_limit_is_refused_unread(tmp_path):
    path = tmp_path / "meta.csv"
    with path.open("wb") as handle:
        handle.truncate(MAX_SHEET_BYTES + 2**20)  # sparse: nothing is written, nothing must be read
    with pytest.raises(MetadataError) as err:
        read_metadata_table(path)
    assert one_line(str(err.value)) == (f"metadata file {path} is 51 MiB, over the 50 MiB limit for a sheet; remove "
                                        "unused rows or split the batch")


def test_remote_sheet_over_the_size_limit_is_refused_before_it_is_copied():
    root = SourceRoot(None, parse_source("s3://bucket/incoming/b1"), ConnectionOptions(), True, "pipeline 'p'")
    big = SourceFile("s3://bucket/incoming/b1/meta.xlsx", "meta.xlsx", MAX_SHEET_BYTES + 1, 0)
    with pytest.raises(MetadataError) as err:  # no request is made: nothing listens at that bucket
        load_sheet(SheetSettings(), [big], [root], None)
    assert one_line(str(err.value)) == ("metadata file s3://bucket/incoming/b1/meta.xlsx is 52,428,801 bytes, over "
                                        "the 52,428,800 bytes limit for a sheet; remove unused rows or split the batch")


@pytest.mark.parametrize("suffix", [".xlsx", ".csv"])
def test_row_limit(tmp_path, suffix):
    path = tmp_path / f"meta{suffix}"
    rows = [["id"]] + [[f"P{i}"] for i in range(5)]
    if suffix == ".csv":
        path.write_text("\n".join(r[0] for r in rows) + "\n", encoding="utf-8")
    else:
        sheet(path, rows)
    with pytest.raises(MetadataError, match=re.escape(f"metadata file {path} has more than 4 rows (row 5); split")):
        read_metadata_table(path, limits=SheetLimits(max_rows=4))


def test_column_limit(tmp_path):
    path = sheet(tmp_path / "meta.xlsx", [["id", "age"], ["P1", 41] + [None] * 998 + ["stray"]])
    with pytest.raises(MetadataError) as err:
        read_metadata_table(path)
    assert one_line(str(err.value)) == (f"metadata file {path} row 2 has a value in column ALM, past the limit of "
                                        "1,000 columns; delete the unused columns")


def test_unzipped_text_limit(tmp_path):
    path = sheet(tmp_path / "meta.xlsx", ROWS)
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("xl/sharedStrings.xml", "x" * 5000)
    with pytest.raises(MetadataError, match=re.escape(f"metadata file {path} holds 5,000 bytes of text once unzipped, "
                                                      "over the 1,000 bytes limit")):
        read_metadata_table(path, limits=SheetLimits(max_text_bytes=1000))

