"""Checking and listing a source wherever it lives, as a stream of SourceFile records.

This is the one entry point the pipeline needs: the location's provider (see :mod:`.registry`) picks the store,
NAS junk is marked the same way for every store, and every failure becomes a SourceError that names the source.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager

from synapse_dagster.core.redaction import redact
from synapse_dagster.core.sources.files import SourceError, SourceFile, excluded_reason, file_from_row, junk_reason
from synapse_dagster.core.sources.location import SourceLocation
from synapse_dagster.core.sources.names import refused_name_reason
from synapse_dagster.core.sources.options import ConnectionOptions
from synapse_dagster.core.sources.store import CopySink, Store


@contextmanager
def open_store(location: SourceLocation, options: ConnectionOptions | None = None, *, checking: bool = False) -> Iterator[Store]:
    """A connection for ``location``'s back end. ``checking`` fails fast: no retries, so a dead endpoint is
    reported in seconds."""
    try:
        store = location.provider.load().connect(location, options or ConnectionOptions.from_env(), checking=checking)
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


def check_source(location: SourceLocation, options: ConnectionOptions | None = None, *, allow_empty: bool = False) -> None:
    """Raise SourceError (naming the source, never a secret) unless ``location`` exists, can be read with
    ``options`` and, unless ``allow_empty``, holds at least one entry."""
    with open_store(location, options, checking=True) as store:
        store.check(location, allow_empty=allow_empty)


def list_files(
    location: SourceLocation,
    options: ConnectionOptions | None = None,
    *,
    recursive: bool = True,
    source_spec: str | None = None,
    store: Store | None = None,
    start_after: str | None = None,
) -> Iterator[SourceFile]:
    """Stream the files below ``location`` (object stores in key order, folders sorted per folder).

    Junk (``.DS_Store``, anything below ``@eaDir`` ...) is yielded with ``excluded_reason``. Pass an open
    ``store`` to reuse one connection across many listings (a sensor tick). ``start_after`` (a relative path)
    resumes a listing in key order, where the provider is ``resumable``.
    """
    if start_after is not None and not location.provider.resumable:
        raise ValueError(f"{location.scheme} listings cannot resume after a key")
    with _store_for(location, options, store) as opened:
        items = opened.iter_files(location, recursive=recursive, start_after=start_after) if start_after else \
            opened.iter_files(location, recursive=recursive)
        for relative, uri, size, mtime_ns, etag, refused in items:  # a ListedFile; file_from_row: in field order
            yield file_from_row((uri, relative, size, mtime_ns, source_spec, excluded_reason(relative), etag,
                                 refused or refused_name_reason(relative)))


def list_subfolders(
    location: SourceLocation,
    options: ConnectionOptions | None = None,
    *,
    start_after: str | None = None,
    store: Store | None = None,
) -> Iterator[str]:
    """Names of the folders (prefixes) directly below ``location`` that sort after ``start_after``, in order.

    Meant for sensors that watch for new batch folders: with the last name seen as ``start_after``, object stores
    skip everything before it on the server. NAS system folders are left out.
    """
    with _store_for(location, options, store) as opened:
        for name in opened.iter_subfolders(location, start_after=start_after):
            if not junk_reason(name, True):
                yield name


def read_bytes(file: SourceFile, location: SourceLocation, options: ConnectionOptions | None, max_bytes: int) -> bytes:
    """The bytes of a small file (sidecar, sheet) below ``location``; refuses anything bigger than ``max_bytes``."""
    if file.size > max_bytes:
        raise ValueError(f"it is {file.size:,} bytes, more than {max_bytes:,}")
    buffer = io.BytesIO()
    with open_store(location, options) as store:
        store.download(location, location.key_of(file.uri), CopySink(buffer), etag=file.etag)
    return buffer.getvalue()


@contextmanager
def _store_for(location: SourceLocation, options: ConnectionOptions | None, store: Store | None) -> Iterator[Store]:
    if store is not None:
        yield store
        return
    with open_store(location, options) as opened:
        yield opened
