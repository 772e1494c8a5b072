"""Excel workbooks (.xlsx with openpyxl, legacy .xls with xlrd) as streamed rows of cells.

The container is checked before a library sees it, so a password-protected, truncated or mislabelled file gets a
message saying what it is and what to do. ``.xlsx`` is read streamed (``read_only``) for the cached values; a
second streamed pass, only when the worksheet holds formulas, finds formula cells with no saved value.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

from synapse_dagster.core.meta.sheet_rows import (
    BadCell, MetadataError, SheetLimits, SheetRows, Worksheet, call_guarded, choose_worksheet, guarded, human_size,
)

OLE_MAGIC = bytes.fromhex("D0CF11E0A1B11AE1")  # the compound file that holds .xls and encrypted Office files
_ENCRYPTED_STREAM = "EncryptedPackage".encode("utf-16-le")
_FORMULA_TAG = re.compile(rb"<(?:\w+:)?f[\s>/]")
_BIFF_BOF = (b"\x09\x00", b"\x09\x02", b"\x09\x04", b"\x09\x08")  # Excel 2-4 .xls, not in a compound file


def password_protected(label: str) -> MetadataError:
    return MetadataError(f"metadata file {label} is password-protected; save a copy without a password")


def not_valid(label: str, kind: str, why: str = "truncated or corrupt") -> MetadataError:
    return MetadataError(f"metadata file {label} is not a valid {kind} ({why}); re-save it from Excel as .xlsx or .csv")


def read_head(path: Path, size: int = 512) -> bytes:
    with path.open("rb") as handle:
        return handle.read(size)


def looks_like(head: bytes) -> str:
    """What a file that is not the workbook its name says appears to be, for the message."""
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith((b"<!doctype html", b"<html")) or b"<table" in text:
        return "it is an HTML page"
    if text.startswith(b"<"):
        return "it is an XML file"
    if head.startswith(b"%PDF"):
        return "it is a PDF"
    if head.startswith(OLE_MAGIC):
        return "it is an older Office file"
    if head.startswith(b"PK"):
        return "it is a zip archive but not an Excel workbook"
    if b"\x00" not in head and _decodes(head):
        return "it is a text file; if it holds CSV, name it .csv"
    return "its content is not a workbook"


def _decodes(head: bytes) -> bool:
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start > len(head) - 4  # only a character cut off by the 512-byte sample
    return True


def is_encrypted(path: Path) -> bool:
    """An Office file encrypted with a password is a compound file holding an ``EncryptedPackage`` stream."""
    with path.open("rb") as handle:
        tail = b""
        while chunk := handle.read(2**20):
            if _ENCRYPTED_STREAM in tail + chunk:
                return True
            tail = chunk[-len(_ENCRYPTED_STREAM):]
    return False


# --- .xlsx ------------------------------------------------------------------------------------------------------


@contextmanager
def xlsx_rows(path: Path, label: str, worksheet: str | None, limits: SheetLimits) -> Iterator[SheetRows]:
    _check_xlsx_container(path, label, limits)
    values = _load_xlsx(path, label, data_only=True)
    formulas = None
    try:
        sheets = [Worksheet(ws.title, ws.sheet_state != "visible", partial(_has_values, ws, label))
                  for ws in values.worksheets]
        name = choose_worksheet(label, worksheet, sheets)
        if _may_hold_formulas(values, values[name]):
            formulas = _load_xlsx(path, label, data_only=False)
        cells = _xlsx_cells(values[name], formulas[name] if formulas else None, label)
        yield SheetRows(_where(label, name, len(sheets)), cells, worksheet=name)
    finally:
        values.close()
        if formulas is not None:
            formulas.close()


def _check_xlsx_container(path: Path, label: str, limits: SheetLimits) -> None:
    head = read_head(path)
    if head.startswith(OLE_MAGIC):
        if is_encrypted(path):
            raise password_protected(label)
        raise MetadataError(f"metadata file {label} is an older .xls workbook, not an .xlsx; rename it to .xls or "
                            "re-save it from Excel as .xlsx")
    if not head.startswith(b"PK"):
        raise not_valid(label, ".xlsx", looks_like(head))
    sizes = call_guarded(lambda: _member_sizes(path), partial(not_valid, label, ".xlsx"))
    if not any(name.startswith("xl/") for name in sizes):
        raise not_valid(label, ".xlsx", "it is a zip archive but not an Excel workbook")
    text = sum(size for name, size in sizes.items() if name.lower().endswith("sharedstrings.xml"))
    if text > limits.max_text_bytes:
        raise MetadataError(f"metadata file {label} holds {human_size(text)} of text once unzipped, over the "
                            f"{human_size(limits.max_text_bytes)} limit; remove unused rows or save it as .csv")


def _member_sizes(path: Path) -> dict[str, int]:
    with zipfile.ZipFile(path) as archive:
        return {info.filename: info.file_size for info in archive.infolist()}


def _load_xlsx(path: Path, label: str, *, data_only: bool) -> Any:
    import openpyxl

    return call_guarded(lambda: openpyxl.load_workbook(path, read_only=True, data_only=data_only),
                        partial(not_valid, label, ".xlsx"))


def _has_values(ws: Any, label: str) -> bool:
    ws.reset_dimensions()  # a writer's stale <dimension> would hide rows from the streamed reader
    rows = guarded(ws.iter_rows(values_only=True), partial(not_valid, label, ".xlsx"))
    return any(not _blank(v) for row in rows for v in row)


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _may_hold_formulas(workbook: Any, ws: Any) -> bool:
    """Whether the worksheet's XML has a formula element: only then is the second (formula) pass needed.

    Reads openpyxl's archive and member path (private); if they are not there, assume it does.
    """
    archive, member = getattr(workbook, "_archive", None), getattr(ws, "_worksheet_path", None)
    if archive is None or member is None:
        return True
    try:
        with archive.open(member) as xml:
            tail = b""
            while chunk := xml.read(2**20):
                if _FORMULA_TAG.search(tail + chunk):
                    return True
                tail = chunk[-16:]
    except Exception:  # a broken member: the streamed pass reports it
        return True
    return False


def _xlsx_cells(values: Any, formulas: Any | None, label: str) -> Iterator[tuple[int, list[Any]]]:
    """Rows of cached values; a cell with an error, or a formula and no cached value, becomes a :class:`BadCell`."""
    corrupt = partial(not_valid, label, ".xlsx")
    values.reset_dimensions()
    formula_rows = None
    if formulas is not None:
        formulas.reset_dimensions()
        formula_rows = guarded(formulas.iter_rows(values_only=True), corrupt)
    for number, cells in enumerate(guarded(values.iter_rows(), corrupt), start=1):
        texts = next(formula_rows, ()) if formula_rows is not None else ()
        yield number, [_xlsx_value(cell, texts[i] if i < len(texts) else None) for i, cell in enumerate(cells)]


def _xlsx_value(cell: Any, formula: Any) -> Any:
    if cell.data_type == "e":
        return BadCell(error=str(cell.value), formula=_formula_text(formula))
    if cell.value is None and formula is not None:
        return BadCell(formula=_formula_text(formula))
    return cell.value


def _formula_text(value: Any) -> str | None:
    text = value if isinstance(value, str) else getattr(value, "text", None)  # ArrayFormula keeps it in .text
    return text if isinstance(text, str) and text.startswith("=") and len(text) > 1 else None


def _where(label: str, name: str, count: int) -> str:
    return f"{label} (worksheet '{name}')" if count > 1 else label


# --- .xls -------------------------------------------------------------------------------------------------------


@contextmanager
def xls_rows(path: Path, label: str, worksheet: str | None, limits: SheetLimits) -> Iterator[SheetRows]:
    """Legacy .xls; xlrd reads the whole file (at most ``limits.max_bytes``, and the format stops at 65,536 rows)."""
    _check_xls_container(path, label)
    book = _open_xls(path, label)
    try:
        sheets = call_guarded(book.sheets, partial(not_valid, label, ".xls"))
        listed = [Worksheet(s.name, s.visibility != 0, partial(_xls_has_values, s)) for s in sheets]
        name = choose_worksheet(label, worksheet, listed)
        sheet = next(s for s in sheets if s.name == name)
        yield SheetRows(_where(label, name, len(sheets)), _xls_cells(sheet, book.datemode), worksheet=name)
    finally:
        book.release_resources()


def _check_xls_container(path: Path, label: str) -> None:
    head = read_head(path)
    if head.startswith(b"PK"):
        raise MetadataError(f"metadata file {label} is an .xlsx workbook with an .xls name; rename it to .xlsx")
    if head.startswith(OLE_MAGIC):
        if is_encrypted(path):
            raise password_protected(label)
        return
    if not head.startswith(_BIFF_BOF):
        raise not_valid(label, ".xls", looks_like(head))


def _open_xls(path: Path, label: str) -> Any:
    import xlrd

    problem = None
    try:
        return xlrd.open_workbook(str(path), on_demand=True)
    except Exception as exc:  # xlrd raises XLRDError, but also struct.error, IndexError … for a broken file
        problem = password_protected(label) if "encrypted" in str(exc).lower() else not_valid(label, ".xls")
    raise problem  # outside the handler: no reference to xlrd's exception is kept


def _xls_has_values(sheet: Any) -> bool:
    import xlrd

    return any(c.ctype not in (xlrd.XL_CELL_EMPTY, xlrd.XL_CELL_BLANK) and not _blank(c.value)
               for r in range(sheet.nrows) for c in sheet.row(r))


def _xls_cells(sheet: Any, datemode: int) -> Iterator[tuple[int, list[Any]]]:
    for r in range(sheet.nrows):
        yield r + 1, [_xls_value(cell, datemode) for cell in sheet.row(r)]


def _xls_value(cell: Any, datemode: int) -> Any:
    import xlrd

    if cell.ctype == xlrd.XL_CELL_DATE:
        try:
            return xlrd.xldate.xldate_as_datetime(cell.value, datemode)
        except (xlrd.xldate.XLDateError, ValueError, OverflowError):
            return cell.value  # a number Excel cannot show as a date: keep the number
    if cell.ctype == xlrd.XL_CELL_BOOLEAN:
        return bool(cell.value)
    if cell.ctype == xlrd.XL_CELL_ERROR:
        return BadCell(error=xlrd.error_text_from_code.get(cell.value, "an error"))
    if cell.ctype in (xlrd.XL_CELL_EMPTY, xlrd.XL_CELL_BLANK):
        return None
    return cell.value
