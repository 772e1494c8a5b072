"""Local disk (and anything mounted there: NFS, SMB mounts, a NAS share) as a store like the others.

Folders are walked with ``os.scandir``: ``DirEntry`` caches the type, and one ``stat`` per file gives size and
mtime. On 20,000 files that took a fifth of the time of ``UPath('file://').rglob`` with ``stat`` (half of
``UPath(path).rglob``'s), and it keeps memory flat, because nothing is collected before it is yielded.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from synapse_dagster.core.sources.files import SourceError, SourceFile
from synapse_dagster.core.sources.location import SourceLocation
from synapse_dagster.core.sources.options import ConnectionOptions
from synapse_dagster.core.sources.store import CHUNK_SIZE, CopySink, ListedFile


class LocalStore:
    def close(self) -> None:
        pass

    def check(self, location: SourceLocation, *, allow_empty: bool = False) -> None:
        path = Path(location.path)
        if not path.exists():
            raise SourceError(f"source '{path}' does not exist; check the path")
        if not path.is_dir():
            raise SourceError(f"source '{path}' is a file, not a folder; point it at the folder")
        if not os.access(path, os.R_OK | os.X_OK):
            raise SourceError(f"source '{path}' is not readable by this process; fix its permissions")
        with os.scandir(path) as entries:
            empty = next(entries, None) is None
        if empty and not allow_empty:
            raise SourceError(f"source '{path}': the folder is empty; check the path")

    def iter_files(self, location: SourceLocation, *, recursive: bool, start_after: str | None = None) -> Iterator[ListedFile]:
        """Every file below the folder in a stable order: a folder's files (sorted), then its sub-folders."""
        if start_after is not None:
            raise ValueError("local listings cannot resume after a key")
        yield from _walk(Path(location.path).resolve(), "", recursive)

    def iter_subfolders(self, location: SourceLocation, *, start_after: str | None) -> Iterator[str]:
        root = Path(location.path)
        try:
            with os.scandir(root) as entries:
                names = sorted(e.name for e in entries if e.is_dir(follow_symlinks=True))
        except FileNotFoundError:
            raise SourceError(f"source '{root}' does not exist; check the path") from None
        except PermissionError:
            raise SourceError(f"cannot list {root}: permission denied; fix its permissions") from None
        yield from (n for n in names if start_after is None or n > start_after)

    def download(self, location: SourceLocation, key: str, out: CopySink, *, etag: str | None) -> None:
        try:
            with open(key, "rb") as handle:
                while chunk := handle.read(CHUNK_SIZE):
                    out.write(chunk)
        except FileNotFoundError:
            raise SourceError(f"{key}: the file no longer exists (deleted since it was listed?); re-run the batch") from None
        except PermissionError:
            raise SourceError(f"{key}: permission denied; fix its permissions") from None


def _walk(directory: Path, prefix: str, recursive: bool) -> Iterator[ListedFile]:
    try:
        with os.scandir(directory) as it:
            entries = sorted(it, key=lambda e: e.name)
    except PermissionError as exc:
        raise SourceError(f"cannot list {directory}: permission denied; fix its permissions") from exc
    subdirs = []
    for entry in entries:
        rel = f"{prefix}{entry.name}"
        try:
            is_dir = entry.is_dir(follow_symlinks=True)
        except OSError:
            is_dir = False
        if is_dir:
            subdirs.append((entry, rel))
            continue
        try:
            st = entry.stat(follow_symlinks=True)
        except FileNotFoundError:
            continue  # vanished between listing and stat (a dangling link or a file being moved away)
        yield ListedFile(rel, entry.path, st.st_size, st.st_mtime_ns, None)
    if recursive:
        for entry, rel in subdirs:
            yield from _walk(Path(entry.path), f"{rel}/", recursive)


def connect(location: SourceLocation, options: ConnectionOptions, *, checking: bool = False) -> LocalStore:
    return LocalStore()


def from_storage(config: Mapping[str, Any], relative: str, options: ConnectionOptions, need) -> tuple[SourceLocation, ConnectionOptions]:
    return SourceLocation("local", path=str(Path(need("location"), relative))), options


def resolve_local_source(path: str, base_dir: Path) -> Path:
    """Turn an absolute, relative or ``~`` path into an existing directory, or explain what is wrong."""
    if "://" in path:
        scheme = path.split("://", 1)[0]
        raise SourceError(f"source '{path}' is a '{scheme}://' URL, not a local folder")
    candidate = Path(path).expanduser()
    if not candidate.is_absolute():
        candidate = (base_dir / candidate).resolve()
    if not candidate.exists():
        raise SourceError(f"source '{path}' does not exist (resolved to {candidate}); check the path in the pipeline file")
    if not candidate.is_dir():
        raise SourceError(f"source '{path}' is a file, not a folder (resolved to {candidate}); point it at the folder")
    if not os.access(candidate, os.R_OK | os.X_OK):
        raise SourceError(f"source '{path}' is not readable by this process (resolved to {candidate}); fix its permissions")
    return candidate


def list_local(root: Path, *, recursive: bool = True, source_spec: str | None = None) -> Iterator[SourceFile]:
    """The files below a local folder, as every listing yields them (junk marked)."""
    from synapse_dagster.core.sources.listing import list_files

    yield from list_files(SourceLocation("local", path=str(root)), recursive=recursive, source_spec=source_spec)


