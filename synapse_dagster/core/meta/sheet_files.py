"""Finding and reading a batch's metadata sheet wherever it lives (batch folder, storage, absolute path).

The sheet is usually listed with the batch, so it is found in the inventory instead of probing a bucket; a
remote sheet is copied to a temporary file because openpyxl, xlrd and csv read local files. A sheet bigger
than ``MAX_SHEET_BYTES`` is refused before it is read or copied, wherever it lives.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from synapse_dagster.core.meta.sheet_rows import MAX_SHEET_BYTES, SheetLimits, check_sheet_size
from synapse_dagster.core.meta.sheets import STANDARD_METADATA_NAMES, MetadataError, MetadataTable, read_metadata_table
from synapse_dagster.core.sources.files import SourceError, SourceFile
from synapse_dagster.core.sources.listing import list_files, read_bytes
from synapse_dagster.core.sources.roots import SourceRoot, read_small, source_kind
from synapse_dagster.core.sources.storage import StorageLookup, resolve_storage_path
from synapse_dagster.core.tables.row_table import matching

__all__ = ["MAX_SHEET_BYTES", "SheetSettings", "load_sheet", "reserved_paths", "sheet_in_batch"]


@dataclass(frozen=True)
class SheetSettings:
    excel_path: str | None = None  # absolute, storage-relative, or relative to the batch folder
    key_column: str | None = None
    discover: bool = True  # look for the standard names at the top of the batch (single-path mode)
    source_spec: str | None = None  # the source whose batch folder may hold the sheet (the first one)
    worksheet: str | None = None  # in a workbook with several worksheets holding data
    encoding: str | None = None  # of a .csv sheet; default: byte-order mark, else UTF-8, else detected


def sheet_in_batch(settings: SheetSettings, files: Sequence[SourceFile]) -> SourceFile | None:
    """The batch's own sheet: the configured relative path, or a standard name at the top of the (first) source.
    Only the candidate names are looked up (a query on a batch table), never a map of every file."""
    configured = settings.excel_path
    if configured:
        if Path(configured).is_absolute():
            return None
        names: tuple[str, ...] = (PurePosixPath(configured).as_posix(),)
    elif settings.discover:
        names = tuple(STANDARD_METADATA_NAMES)
    else:
        return None
    condition = f"relative_path in ({', '.join('?' * len(names))}) and source_spec is ?"
    found = {f.relative_path: f for f in matching(files, lambda f: f.relative_path in names and
                                                  f.source_spec == settings.source_spec, condition,
                                                  (*names, settings.source_spec))
             if not f.set_aside}
    return next((found[n] for n in names if n in found), None)


def reserved_paths(settings: SheetSettings, files: Sequence[SourceFile], ready_marker: str | None) -> dict[str, str]:
    """Files in the batch that are not data: the sheet and the readiness marker."""
    reserved = {}
    sheet = sheet_in_batch(settings, files)
    if sheet is not None and sheet.source_spec is None:
        reserved[sheet.relative_path] = "metadata sheet"
    if ready_marker:
        reserved[ready_marker] = "batch readiness marker"
    return reserved


def load_sheet(
    settings: SheetSettings, files: Sequence[SourceFile], roots: Sequence[SourceRoot], storage: StorageLookup | None,
    *, storage_label: str = "storage",
) -> MetadataTable | None:
    """Resolve the sheet (absolute → storage-relative → relative to the batch, or discovered) and read it."""
    configured = settings.excel_path
    tried: list[str] = []
    if configured and Path(configured).expanduser().is_absolute():
        path = Path(configured).expanduser()
        if path.is_file():
            return _read_local(path, settings)
        tried.append(str(path))
    elif configured and storage is not None and source_kind(configured) == "storage":
        found = _in_storage(configured, storage, settings)
        if found is not None:
            return found
        tried.append(f"{storage_label}: {configured}")
    in_batch = sheet_in_batch(settings, files)
    if in_batch is not None:
        return _read(in_batch, roots, settings)
    if configured:
        tried.append(f"{configured} in the batch folder")
        raise MetadataError(f"metadata file '{configured}' not found (looked at {', '.join(tried)}); fix metadata.excel_path")
    return None


def _in_storage(configured: str, storage: StorageLookup, settings: SheetSettings) -> MetadataTable | None:
    relative = PurePosixPath(configured)
    folder, options = resolve_storage_path("" if str(relative.parent) == "." else str(relative.parent), storage())
    try:
        found = next((f for f in list_files(folder, options, recursive=False) if f.relative_path == relative.name), None)
    except SourceError:
        return None
    if found is None:
        return None
    check_sheet_size(found.uri, found.size, SheetLimits())
    return _read_copy(found, read_bytes(found, folder, options, MAX_SHEET_BYTES), settings)


def _read(file: SourceFile, roots: Sequence[SourceRoot], settings: SheetSettings) -> MetadataTable:
    if next(r for r in roots if r.spec == file.source_spec).is_local:
        return _read_local(Path(file.uri), settings)
    check_sheet_size(file.uri, file.size, SheetLimits())  # before the copy: the listing knows the size
    return _read_copy(file, read_small(file, roots, max_bytes=MAX_SHEET_BYTES), settings)


def _read_local(path: Path, settings: SheetSettings, label: str | None = None) -> MetadataTable:
    return read_metadata_table(path, settings.key_column, worksheet=settings.worksheet, encoding=settings.encoding,
                               label=label)


def _read_copy(file: SourceFile, data: bytes, settings: SheetSettings) -> MetadataTable:
    with tempfile.TemporaryDirectory(prefix="synapse-sheet-") as folder:
        local = Path(folder) / file.name
        local.write_bytes(data)
        return _read_local(local, settings, label=file.uri)
