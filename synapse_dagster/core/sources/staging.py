"""Local copies of remote files for the SDK's ``upload_files_bulk``, which only takes local paths.

Copies are made a slice at a time into a private temp folder and deleted when the slice is done, so local disk
use stays near ``max_bytes`` however big the batch is. Each copy is streamed in 8 MiB chunks (never a whole
file in memory) and verified: its size must match the listing, and so must its MD5 where the listing gave one.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path, PurePosixPath

from synapse_dagster.core.sources.files import SourceError, SourceFile
from synapse_dagster.core.redaction import redact
from synapse_dagster.core.sources.location import SourceLocation, sftp_netloc, split_uri
from synapse_dagster.core.sources.options import ConnectionOptions
from synapse_dagster.core.sources.listing import open_store
from synapse_dagster.core.sources.store import CopySink, RemoteStore

_MD5 = re.compile(r"[0-9a-f]{32}")


@contextmanager
def staged_copies(
    files: Iterable[SourceFile],
    options: ConnectionOptions | None,
    workdir: Path,
    max_bytes: int,
    *,
    failures: dict[str, str] | None = None,
) -> Iterator[Iterator[dict[str, Path]]]:
    """Yield an iterator of slices ``{fingerprint: local path}``; a slice's copies go when the next is asked for.

    Remote files in one slice add up to at most ``max_bytes`` (a bigger file gets a slice of its own); local
    files (a URI without scheme) are passed through as they are and do not count. A copy that fails or does
    not match its listing raises SourceError, or, when ``failures`` is given, is recorded there by fingerprint
    and left out of its slice. Everything still staged is deleted when the ``with`` block ends::

        with staged_copies(files, options, workdir, 512 * 2**20) as slices:
            for paths in slices:
                client.upload_files_bulk(list(paths.values()))
    """
    if max_bytes <= 0:
        raise ValueError("max_bytes must be positive")
    slices = _stage(files, options or ConnectionOptions.from_env(), workdir, max_bytes, failures)
    try:
        yield slices
    finally:
        slices.close()


def _stage(
    files: Iterable[SourceFile],
    options: ConnectionOptions,
    workdir: Path,
    max_bytes: int,
    failures: dict[str, str] | None,
) -> Iterator[dict[str, Path]]:
    workdir.mkdir(parents=True, exist_ok=True)
    area = Path(tempfile.mkdtemp(prefix="staged-", dir=workdir))
    with ExitStack() as connections:
        stores: dict[tuple, RemoteStore | SourceError] = {}
        try:
            for number, group in enumerate(_slices(files, max_bytes)):
                slice_dir = area / f"slice-{number:05d}"
                staged: dict[str, Path] = {}
                for index, file in enumerate(group):
                    if "://" not in file.uri:
                        staged[file.fingerprint] = Path(file.uri)
                        continue
                    target = slice_dir / f"{index:06d}" / PurePosixPath(file.relative_path).name
                    try:
                        _copy(file, target, _store_for(file.uri, options, stores, connections))
                    except SourceError as exc:
                        if failures is None:
                            raise
                        failures[file.fingerprint] = redact(str(exc))
                        target.unlink(missing_ok=True)
                        continue
                    staged[file.fingerprint] = target
                if staged:
                    yield staged
                shutil.rmtree(slice_dir, ignore_errors=True)
        finally:
            shutil.rmtree(area, ignore_errors=True)


def _slices(files: Iterable[SourceFile], max_bytes: int) -> Iterator[list[SourceFile]]:
    current: list[SourceFile] = []
    staged_bytes = 0
    seen: set[str] = set()
    for file in files:
        if file.fingerprint in seen:
            continue
        seen.add(file.fingerprint)
        remote = "://" in file.uri
        if remote and current and staged_bytes + file.size > max_bytes:
            yield current
            current, staged_bytes = [], 0
        current.append(file)
        if remote:
            staged_bytes += file.size
    if current:
        yield current


def _store_for(
    uri: str, options: ConnectionOptions, stores: dict[tuple, RemoteStore | SourceError], connections: ExitStack
) -> tuple[RemoteStore, SourceLocation]:
    """One connection per S3/GCS client or SFTP server, opened on first use and kept for the whole staging;
    a connection that failed is not retried for every file."""
    scheme, netloc, _ = split_uri(uri)
    if scheme == "sftp":
        user, host, port = sftp_netloc(netloc, uri)
        key: tuple = (scheme, host, port, user)
        container = SourceLocation("sftp", host, "/", port, user)
    else:
        key = (scheme,)
        container = SourceLocation(scheme, netloc, "")
    if key not in stores:
        try:
            stores[key] = connections.enter_context(open_store(container, options))
        except SourceError as exc:
            stores[key] = exc
    store = stores[key]
    if isinstance(store, SourceError):
        raise SourceError(str(store))
    return store, container


def _copy(file: SourceFile, target: Path, store_and_location: tuple[RemoteStore, SourceLocation]) -> None:
    store, location = store_and_location
    _, _, key = split_uri(file.uri)
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("wb") as handle:
        sink = CopySink(handle)
        store.download(location, key, sink, etag=file.etag)
    if sink.size != file.size:
        raise SourceError(
            f"{file.uri}: copied {sink.size} bytes but {file.size} were listed; the file changed since it was listed, "
            "re-run the batch"
        )
    if file.etag and _MD5.fullmatch(file.etag) and sink.md5_hex != file.etag:
        raise SourceError(f"{file.uri}: the copy's MD5 does not match the listing; the file changed, re-run the batch")
