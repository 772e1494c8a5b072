"""Checking and listing a source wherever it lives (local disk, S3, GCS, SFTP), as a stream of SourceFile records.

This is the one entry point the pipeline needs: it picks the back end from the location's scheme, marks NAS
junk exactly as a local listing does, and turns every failure into a SourceError that names the source.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from synapse_dagster.core.sources.files import SourceError, SourceFile, junk_reason, list_local
from synapse_dagster.core.redaction import redact
from synapse_dagster.core.sources.location import SourceLocation
from synapse_dagster.core.sources.options import ConnectionOptions
from synapse_dagster.core.sources.store import RemoteStore


RESUMABLE_SCHEMES = ("s3", "gcs")  # listings in global key order, resumable on the server


@contextmanager
def open_store(
    location: SourceLocation, options: ConnectionOptions, *, checking: bool = False
) -> Iterator[RemoteStore]:
    """A connection for ``location``'s back end. ``checking`` fails fast: no retries, so a dead endpoint is
    reported in seconds."""
    try:
        store = _connect(location, options, checking)
    except SourceError as exc:
        if location.uri in str(exc):
            raise
        raise SourceError(f"{location.uri}: {exc}") from None
    except ValueError as exc:  # e.g. a malformed endpoint URL
        raise SourceError(redact(f"{location.uri}: {exc}")) from None
    try:
        yield store
    finally:
        store.close()


def _connect(location: SourceLocation, options: ConnectionOptions, checking: bool) -> RemoteStore:
    if location.scheme == "s3":
        from synapse_dagster.core.sources.s3 import S3Store

        return S3Store(options, checking=checking)
    if location.scheme == "gcs":
        from synapse_dagster.core.sources.gcs import GCSStore

        return GCSStore(options, checking=checking)
    if location.scheme == "sftp":
        from synapse_dagster.core.sources.sftp import SFTPStore

        return SFTPStore(options, location)
    raise ValueError(f"no remote store for scheme {location.scheme!r}")


def check_source(
    location: SourceLocation, options: ConnectionOptions | None = None, *, allow_empty: bool = False
) -> None:
    """Raise SourceError (naming the source, never a secret) unless ``location`` exists, can be read with
    ``options`` and, unless ``allow_empty``, holds at least one entry."""
    if location.scheme == "local":
        _check_local(location, allow_empty)
        return
    with open_store(location, options or ConnectionOptions.from_env(), checking=True) as store:
        store.check(location, allow_empty=allow_empty)


def list_remote(
    location: SourceLocation,
    options: ConnectionOptions | None = None,
    *,
    recursive: bool = True,
    source_spec: str | None = None,
    store: RemoteStore | None = None,
    start_after: str | None = None,
) -> Iterator[SourceFile]:
    """Stream the files below ``location`` (S3/GCS in the store's key order, SFTP and local sorted per folder).

    Junk (``.DS_Store``, anything below ``@eaDir`` ...) is yielded with ``excluded_reason``, as local listings do.
    Pass an open ``store`` to reuse one connection across many listings (a sensor tick). ``start_after`` (a
    relative path) resumes an S3/GCS listing in key order; SFTP and local listings cannot resume.
    """
    if start_after is not None and location.scheme not in RESUMABLE_SCHEMES:
        raise ValueError(f"{location.scheme} listings cannot resume after a key")
    if location.scheme == "local":
        yield from list_local(Path(location.path), recursive=recursive, source_spec=source_spec)
        return
    with _store_for(location, options, store) as opened:
        items = opened.iter_files(location, recursive=recursive, start_after=start_after) if start_after else \
            opened.iter_files(location, recursive=recursive)
        for item in items:
            yield SourceFile(
                uri=item.uri,
                relative_path=item.relative,
                size=item.size,
                mtime_ns=item.mtime_ns,
                source_spec=source_spec,
                excluded_reason=excluded_reason(item.relative),
                etag=item.etag,
            )


def list_subfolders(
    location: SourceLocation,
    options: ConnectionOptions | None = None,
    *,
    start_after: str | None = None,
    store: RemoteStore | None = None,
) -> Iterator[str]:
    """Names of the folders (prefixes) directly below ``location`` that sort after ``start_after``, in order.

    Meant for sensors that watch for new batch folders: with the last name seen as ``start_after``, S3 and GCS
    skip everything before it on the server. NAS system folders are left out.
    """
    if location.scheme == "local":
        yield from _local_subfolders(Path(location.path), start_after)
        return
    with _store_for(location, options, store) as opened:
        for name in opened.iter_subfolders(location, start_after=start_after):
            if not junk_reason(name, True):
                yield name


@contextmanager
def _store_for(location: SourceLocation, options: ConnectionOptions | None, store: RemoteStore | None) -> Iterator[RemoteStore]:
    if store is not None:
        yield store
        return
    with open_store(location, options or ConnectionOptions.from_env()) as opened:
        yield opened


def excluded_reason(relative_path: str) -> str | None:
    """Why a file is NAS/desktop junk: its outermost junk folder first, then its own name."""
    *folders, name = PurePosixPath(relative_path).parts
    for folder in folders:
        reason = junk_reason(folder, True)
        if reason:
            return reason
    return junk_reason(name, False)


def _check_local(location: SourceLocation, allow_empty: bool) -> None:
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


def _local_subfolders(root: Path, start_after: str | None) -> Iterator[str]:
    try:
        with os.scandir(root) as entries:
            names = sorted(e.name for e in entries if e.is_dir(follow_symlinks=True))
    except FileNotFoundError:
        raise SourceError(f"source '{root}' does not exist; check the path") from None
    except PermissionError:
        raise SourceError(f"cannot list {root}: permission denied; fix its permissions") from None
    for name in names:
        if not junk_reason(name, True) and (start_after is None or name > start_after):
            yield name
