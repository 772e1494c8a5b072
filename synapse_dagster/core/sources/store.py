"""The small interface every back end (local disk, S3, GCS, SFTP, …) implements, so listing and staging are
written once.

A store is one open connection (nothing for local disk, an S3 or GCS client, an SSH session). It speaks in store
terms (keys and absolute paths) and raises only :class:`~synapse_dagster.core.sources.files.SourceError`, already
worded for a person and scrubbed of secrets.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import BinaryIO, NamedTuple, Protocol, TypeVar

from synapse_dagster.core.sources.location import SourceLocation

CHUNK_SIZE = 8 * 1024 * 1024


class ListedFile(NamedTuple):
    """One file as the store lists it: ``relative`` is POSIX, relative to the listed folder."""

    relative: str
    uri: str
    size: int
    mtime_ns: int
    etag: str | None
    refused: str | None = None  # why the file must not be read (a link out of the source, a FIFO, a loop …)


class Store(Protocol):
    def check(self, location: SourceLocation, *, allow_empty: bool = False) -> None:
        """Raise SourceError unless ``location`` can be listed (and holds at least one file, unless allow_empty)."""

    def iter_files(self, location: SourceLocation, *, recursive: bool, start_after: str | None = None) -> Iterator[ListedFile]:
        """Stream the files below ``location``, a page or a directory at a time; resumable stores (see the
        registry) continue after the relative path ``start_after``, in key order."""

    def iter_subfolders(self, location: SourceLocation, *, start_after: str | None) -> Iterator[str]:
        """Names of the folders directly below ``location`` that sort after ``start_after``, in order."""

    def download(self, location: SourceLocation, key: str, out: CopySink, *, etag: str | None) -> None:
        """Write the object ``key`` (buckets) or absolute path (hosts, local disk) into ``out`` chunk by chunk."""

    def close(self) -> None: ...


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_T = TypeVar("_T")
_DONE = object()


def read_ahead(pages: Iterator[_T]) -> Iterator[_T]:
    """``pages`` in order, the next one already being fetched in a background thread while the caller works
    through the current one.

    A paginated listing otherwise alternates between waiting for the server and parsing what it sent; overlapping
    the two saves up to the server's whole share of the time. Exactly one page is fetched ahead, so memory stays
    at two pages however long the listing is, and ``pages`` is only ever advanced by that one thread. A failure
    is raised here, in the caller's thread, where the page would have come out. A caller that stops early waits
    for the one request still running, so nothing uses the connection after the listing has ended.
    """
    pool = ThreadPoolExecutor(1, thread_name_prefix="read-ahead")
    try:
        ahead = pool.submit(next, pages, _DONE)
        while (page := ahead.result()) is not _DONE:
            ahead = pool.submit(next, pages, _DONE)
            yield page
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def datetime_ns(value: datetime) -> int:
    """Exact nanoseconds since the epoch (``timestamp() * 1e9`` would lose microseconds to float rounding)."""
    delta = value.astimezone(UTC) - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


class CopySink:
    """A write target that counts bytes and computes the MD5 as chunks pass, so a copy is verified without
    reading it back."""

    def __init__(self, file: BinaryIO) -> None:
        self._file = file
        self.size = 0
        self._md5 = hashlib.md5(usedforsecurity=False)

    def write(self, chunk: bytes) -> int:
        self._file.write(chunk)
        self._md5.update(chunk)
        self.size += len(chunk)
        return len(chunk)

    @property
    def md5_hex(self) -> str:
        return self._md5.hexdigest()
