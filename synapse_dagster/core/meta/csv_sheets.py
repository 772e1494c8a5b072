"""CSV sheets in whatever encoding the program that saved them used, streamed record by record.

Excel saves "CSV" in the computer's code page (cp1252, cp949, cp932 …) and "CSV UTF-8" with a byte-order mark;
other tools write plain UTF-8 or UTF-16. So: ``metadata.encoding`` when set, else the byte-order mark, else
UTF-8 when the whole file decodes as UTF-8, else what charset-normalizer detects, noted so a reviewer can check it.
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from synapse_dagster.core.meta.sheet_rows import MetadataError, SheetLimits, SheetRows
from synapse_dagster.core.meta.workbooks import OLE_MAGIC, read_head

_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF8, "utf-8-sig"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))  # UTF-32 LE starts like UTF-16 LE
# The code pages spreadsheets save CSV in, Western Windows first: detection breaks ties in this order.
_SPREADSHEET_ENCODINGS = ("cp1252", "cp1250", "cp1251", "cp1253", "cp1254", "cp1255", "cp1256", "cp1257", "cp1258",
                          "cp874", "cp932", "cp949", "gb18030", "big5", "euc_jp", "euc_kr", "mac_roman")
_SAMPLE_BYTES = 2**20


@contextmanager
def csv_rows(path: Path, label: str, encoding: str | None, limits: SheetLimits) -> Iterator[SheetRows]:
    head = read_head(path)
    if head.startswith((b"PK\x03\x04", OLE_MAGIC)):
        raise MetadataError(f"metadata file {label} is an Excel workbook with a .csv name; rename it to .xlsx "
                            "(or .xls for an older workbook)")
    chosen, notes = choose_encoding(path, label, encoding, head)
    with path.open(encoding=chosen, newline="") as handle:
        yield SheetRows(label, _records(handle, path, label, chosen), notes)


def choose_encoding(path: Path, label: str, configured: str | None, head: bytes) -> tuple[str, list[str]]:
    """The encoding to read with, and a note when it was detected (a guess a reviewer should see)."""
    if configured:
        return _configured(label, configured), []
    for bom, name in _BOMS:
        if head.startswith(bom):
            return name, []
    if first_undecodable_line(path, "utf-8") is None:
        return "utf-8", []
    detected = detect_encoding(_sample(path))
    if detected is None:
        raise MetadataError(f"metadata file {label} is not UTF-8 and its text encoding cannot be detected; set "
                            "metadata.encoding (e.g. cp1252, cp949, shift_jis) or save it from Excel as 'CSV UTF-8'")
    return detected, [f"{label} is not UTF-8; it was read as {detected} (detected, so possibly wrong: if its text "
                      "looks garbled, set metadata.encoding)"]


def _configured(label: str, configured: str) -> str:
    name = None
    try:
        b"a".decode(configured)  # a LookupError also for codecs that are not text encodings (base64 …)
        name = codecs.lookup(configured).name
    except UnicodeDecodeError:
        name = codecs.lookup(configured).name
    except LookupError:
        pass
    if name is None:
        raise MetadataError(f"metadata.encoding '{configured}' (for {label}) is not a known encoding; use a name such "
                            "as utf-8, cp1252 or shift_jis")
    return "utf-8-sig" if name == "utf-8" else configured  # Excel's "CSV UTF-8" starts with a byte-order mark


def first_undecodable_line(path: Path, encoding: str) -> int | None:
    """The 1-based line of the first byte sequence ``encoding`` cannot decode, or None when the whole file decodes."""
    decoder = codecs.getincrementaldecoder(encoding)()
    lines = 1
    with path.open("rb") as handle:
        while chunk := handle.read(2**16):
            try:
                lines += decoder.decode(chunk).count("\n")
            except UnicodeDecodeError as exc:
                return lines + chunk[: max(exc.start, 0)].count(b"\n")
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return lines
    return None


def _sample(path: Path) -> bytes:
    """The first MiB, cut at a line end so no character is cut in two."""
    with path.open("rb") as handle:
        sample = handle.read(_SAMPLE_BYTES + 1)
    if len(sample) > _SAMPLE_BYTES and b"\n" in sample:
        sample = sample[: sample.rindex(b"\n") + 1]
    return sample


def detect_encoding(sample: bytes) -> str | None:
    """charset-normalizer's best match among the encodings spreadsheets write; ties go to the commoner code page.

    Single-byte code pages are often equally plausible (cp1250 and cp1252 decode most Spanish text alike), and
    charset-normalizer's own pick among them is arbitrary, so the order of :data:`_SPREADSHEET_ENCODINGS` decides.
    """
    from charset_normalizer import from_bytes

    matches = list(from_bytes(sample, cp_isolation=list(_SPREADSHEET_ENCODINGS)))
    if not matches:
        return None
    rank = {name: i for i, name in enumerate(_SPREADSHEET_ENCODINGS)}
    best = min(matches, key=lambda m: (round(m.chaos, 3), -round(m.coherence, 3), rank.get(m.encoding, len(rank))))
    return best.encoding


def _records(handle: TextIO, path: Path, label: str, encoding: str) -> Iterator[tuple[int, list[str]]]:
    """(row number as a spreadsheet shows it, fields); a broken line is one message naming it."""
    reader = csv.reader(handle, strict=True)  # a broken quote is an error, not rows silently run together
    number = 0
    while True:
        line, problem = reader.line_num + 1, None
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            problem = _csv_problem(label, line, str(exc))
        except UnicodeDecodeError:
            problem = (f"metadata file {label} line {first_undecodable_line(path, encoding) or line} cannot be read as "
                       f"{encoding.removesuffix('-sig')}; set metadata.encoding to the encoding it was saved in, or "
                       "save it as 'CSV UTF-8'")
        if problem:
            raise MetadataError(problem)
        if any("\x00" in field for field in record):
            raise MetadataError(f"metadata file {label} line {line} contains a NUL byte, so it is not plain CSV text "
                                "(UTF-16 without a byte-order mark, or not text at all); save it from Excel as "
                                "'CSV UTF-8' or set metadata.encoding")
        number += 1
        yield number, record


def _csv_problem(label: str, line: int, message: str) -> str:
    if "field larger than field limit" in message:
        return (f"metadata file {label} line {line}: a field is longer than {csv.field_size_limit():,} characters "
                "(often a quote that is never closed); fix the quoting or shorten the field")
    if "unexpected end of data" in message:
        return f"metadata file {label} line {line}: a quoted field that starts here is never closed; add the closing quote"
    return f"metadata file {label} line {line} is not valid CSV ({message}); fix that line or save the sheet as .xlsx"
