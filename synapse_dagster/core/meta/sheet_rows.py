"""What every sheet reader (.xlsx, .xls, .csv) hands the table builder: numbered rows of cells, streamed.

A sheet is untrusted input, so the readers turn every library failure into a :class:`MetadataError` that names
the file and the fix, and bound what they read (:class:`SheetLimits`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

MAX_SHEET_BYTES = 50 * 2**20

T = TypeVar("T")


class MetadataError(ValueError):
    """A metadata sheet that cannot be used at all; names the file and what to fix."""


@dataclass(frozen=True)
class SheetLimits:
    """How much of a sheet is read at most; a sheet over a limit is refused, never read in part."""

    max_bytes: int = MAX_SHEET_BYTES
    max_rows: int = 1_000_000
    max_columns: int = 1_000
    max_text_bytes: int = 4 * MAX_SHEET_BYTES  # an .xlsx's shared strings, unzipped (openpyxl holds them in memory)


@dataclass(frozen=True)
class BadCell:
    """A cell whose value cannot be used: a formula with no saved value (``error`` None) or an error like #DIV/0!."""

    error: str | None = None
    formula: str | None = None

    def problem(self) -> str:
        formula = f" {self.formula}" if self.formula else ""
        if self.error:
            gives = f"the formula {self.formula} gives" if self.formula else "the cell holds the error"
            return f"{gives} {self.error}; fix the formula or type the value"
        return (f"the formula{formula} has no saved value (the file was written by a program and never saved in "
                "Excel); open and save it in Excel, or type the value")


@dataclass
class SheetRows:
    """One worksheet's cells, streamed as (row number as the spreadsheet shows it, cell values)."""

    where: str  # the file as messages name it, with the worksheet when there are several
    rows: Iterator[tuple[int, list[Any]]]
    notes: list[str] = field(default_factory=list)
    worksheet: str | None = None


def check_sheet_size(label: str, size: int, limits: SheetLimits) -> None:
    if size > limits.max_bytes:
        shown, limit = human_size(size), human_size(limits.max_bytes)
        if shown == limit:  # just over: rounded, both would read the same
            shown, limit = f"{size:,} bytes", f"{limits.max_bytes:,} bytes"
        raise MetadataError(f"metadata file {label} is {shown}, over the {limit} limit for a sheet; remove unused rows "
                            "or split the batch")


def human_size(size: int) -> str:
    return f"{size / 2**20:.1f} MiB".replace(".0 MiB", " MiB") if size >= 2**20 else f"{size:,} bytes"


def guarded(items: Iterable[T], error: Callable[[], MetadataError]) -> Iterator[T]:
    """Items from a library iterator; any failure of the library becomes ``error()``.

    The library's exception is dropped before raising: on CPython 3.12.1 an ElementTree ParseError that is still
    referenced (as ``__context__``) when the interpreter exits crashes it with a segmentation fault.
    """
    iterator = iter(items)
    while True:
        failed = False
        try:
            item = next(iterator)
        except StopIteration:
            return
        except MetadataError:
            raise
        except Exception:  # openpyxl, xlrd and zipfile raise many unrelated types for a broken file
            failed = True
        if failed:
            raise error()
        yield item


def call_guarded(action: Callable[[], T], error: Callable[[], MetadataError]) -> T:
    """``action()``; any failure becomes ``error()`` (see :func:`guarded` for why the cause is dropped)."""
    return next(guarded(_once(action), error))


def _once(action: Callable[[], T]) -> Iterator[T]:
    yield action()


def column_letter(index: int) -> str:
    """The spreadsheet's name of the 0-based column ``index``: A … Z, AA …"""
    number, letters = index + 1, ""
    while number:
        number, rest = divmod(number - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


def quoted(names: Sequence[str]) -> str:
    return ", ".join(f"'{n}'" for n in names)


@dataclass(frozen=True)
class Worksheet:
    name: str
    hidden: bool
    has_values: Callable[[], bool]


def choose_worksheet(label: str, wanted: str | None, sheets: Sequence[Worksheet]) -> str:
    """The worksheet named by metadata.worksheet, else the only one holding data; never a guess between several."""
    if not sheets:
        raise MetadataError(f"metadata file {label} has no worksheets; save the data on a worksheet")
    names = [s.name for s in sheets]
    if wanted is not None:
        folded = {_fold(n): n for n in names}
        if wanted in names or _fold(wanted) in folded:
            return wanted if wanted in names else folded[_fold(wanted)]
        raise MetadataError(f"metadata file {label} has no worksheet '{wanted}' (worksheets: {quoted(names)}); "
                            "fix metadata.worksheet")
    filled = [s for s in sheets if s.has_values()]
    if len(filled) > 1:
        listed = ", ".join(f"'{s.name}'" + (" (hidden)" if s.hidden else "") for s in filled)
        raise MetadataError(f"metadata file {label} has several worksheets with data ({listed}); set "
                            "metadata.worksheet to the one to read")
    return (filled or sheets)[0].name


def _fold(name: str) -> str:
    return name.strip().casefold()  # Excel treats sheet names case-insensitively
