"""Finding and reading a batch's metadata sheet wherever it lives (batch folder, storage, absolute path).

The sheet is usually listed with the batch, so it is found in the inventory instead of probing a bucket;
a remote sheet is copied to a temporary file because openpyxl, xlrd and csv read local files.
"""

from __future__ import annotations

import tempfile
from pathlib import Path, PurePosixPath

from synapse_dagster.core.sources.files import SourceError, SourceFile
from synapse_dagster.core.meta.sheets import STANDARD_METADATA_NAMES, MetadataError, MetadataTable, read_metadata_table
from synapse_dagster.core.sources.location import resolve_storage_path
from synapse_dagster.core.sources.listing import list_remote
from synapse_dagster.pipeline_config import PipelineConfig
from synapse_dagster.sources import SourceRoot, StorageLookup, read_small, source_kind

MAX_SHEET_BYTES = 50 * 2**20


def sheet_in_batch(pipeline: PipelineConfig, files: list[SourceFile]) -> SourceFile | None:
    """The batch's own sheet: the configured relative path, or a standard name at the top of the (first) source."""
    first_spec = next(iter(pipeline.source_paths()))
    candidates = {f.relative_path: f for f in files if f.source_spec == first_spec and not f.excluded_reason}
    configured = pipeline.metadata.excel_path
    if configured:
        return candidates.get(PurePosixPath(configured).as_posix()) if not Path(configured).is_absolute() else None
    if not pipeline.single_path:
        return None
    return next((candidates[n] for n in STANDARD_METADATA_NAMES if n in candidates), None)


def reserved_paths(pipeline: PipelineConfig, files: list[SourceFile]) -> dict[str, str]:
    """Files in the batch that are not data: the sheet and the readiness marker."""
    reserved = {}
    sheet = sheet_in_batch(pipeline, files)
    if sheet is not None and sheet.source_spec is None:
        reserved[sheet.relative_path] = "metadata sheet"
    if pipeline.batches.ready_marker:
        reserved[pipeline.batches.ready_marker] = "batch readiness marker"
    return reserved


def load_sheet(
    pipeline: PipelineConfig, files: list[SourceFile], roots: list[SourceRoot], storage: StorageLookup
) -> MetadataTable | None:
    """Resolve the sheet (absolute → storage-relative → relative to the batch, or discovered) and read it."""
    configured = pipeline.metadata.excel_path
    key_column = pipeline.metadata.key_column
    tried: list[str] = []
    if configured and Path(configured).expanduser().is_absolute():
        path = Path(configured).expanduser()
        if path.is_file():
            return read_metadata_table(path, key_column)
        tried.append(str(path))
    elif configured and source_kind(configured) == "storage":
        relative = PurePosixPath(configured)
        folder, options = resolve_storage_path("" if str(relative.parent) == "." else str(relative.parent), storage())
        if folder.scheme == "local":
            if (Path(folder.path) / relative.name).is_file():
                return read_metadata_table(Path(folder.path) / relative.name, key_column)
        else:
            try:
                found = next((f for f in list_remote(folder, options, recursive=False) if f.relative_path == relative.name), None)
            except SourceError:
                found = None
            if found is not None:
                return _read_remote(found, [SourceRoot(None, folder, options, False, "storage")], key_column)
        tried.append(f"storage {pipeline.storage}: {configured}")
    in_batch = sheet_in_batch(pipeline, files)
    if in_batch is not None:
        if "://" not in in_batch.uri:
            return read_metadata_table(Path(in_batch.uri), key_column)
        return _read_remote(in_batch, roots, key_column)
    if configured:
        tried.append(f"{configured} in the batch folder")
        raise MetadataError(f"metadata file '{configured}' not found (looked at {', '.join(tried)}); fix metadata.excel_path")
    return None


def _read_remote(file: SourceFile, roots: list[SourceRoot], key_column: str | None) -> MetadataTable:
    data = read_small(file, roots, max_bytes=MAX_SHEET_BYTES)
    with tempfile.TemporaryDirectory(prefix="synapse-sheet-") as folder:
        local = Path(folder) / file.name
        local.write_bytes(data)
        table = read_metadata_table(local, key_column)
    table.path = file.uri
    return table
