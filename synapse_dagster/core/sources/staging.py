"""Local copies of remote files for the SDK's ``upload_files_bulk``, which only takes local paths.

Copies are made a slice at a time into a private temp folder and deleted when the slice is done, so local disk
use stays near ``max_bytes`` however big the batch is. Each copy is streamed in 8 MiB chunks (never a whole
file in memory) and verified: its size must match the listing, and so must its MD5 where the listing gave one.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from contextlib import ExitStack, contextmanager
from pathlib import Path, PurePosixPath

from synapse_dagster.core.sources.files import SourceError, SourceFile
from synapse_dagster.core.redaction import redact
from synapse_dagster.core.sources.location import SourceLocation, parse_source
from synapse_dagster.core.sources.options import ConnectionOptions
from synapse_dagster.core.sources.listing import open_store
from synapse_dagster.core.sources.roots import SourceRoot
from synapse_dagster.core.sources.store import CopySink, Store

Stage = Callable[[list[SourceFile]], AbstractContextManager[Iterable[dict[str, Path]]]]

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
        stores: dict[SourceLocation, Store | SourceError] = {}
        try:
            for number, group in enumerate(_slices(files, max_bytes)):
                slice_dir = area / f"slice-{number:05d}"
                staged: dict[str, Path] = {}
                for index, file in enumerate(group):
                    location = parse_source(file.uri)
                    if location.is_local:  # the SDK reads local files where they are
                        staged[file.fingerprint] = Path(file.uri)
                        continue
                    target = staging_path(slice_dir, index, file.relative_path)
                    try:
                        _copy(file, location, target, _store_for(location, options, stores, connections))
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


def staging_path(slice_dir: Path, index: int, relative_path: str) -> Path:
    """Where a copy goes: always a file directly inside its own numbered folder of the slice, whatever the key
    says (listings refuse keys with '..', but the copy does not rely on that)."""
    name = PurePosixPath(relative_path.replace("\\", "/")).name
    if name in ("", ".", "..") or os.sep in name or (os.altsep and os.altsep in name):
        name = "file"
    folder = slice_dir / f"{index:06d}"
    target = folder / name
    if os.path.dirname(os.path.normpath(target)) != os.path.normpath(folder):
        raise SourceError(f"{relative_path}: refusing to stage a copy outside its folder")
    return target


def _slices(files: Iterable[SourceFile], max_bytes: int) -> Iterator[list[SourceFile]]:
    current: list[SourceFile] = []
    staged_bytes = 0
    seen: set[str] = set()
    for file in files:
        if file.fingerprint in seen:
            continue
        seen.add(file.fingerprint)
        remote = not parse_source(file.uri).is_local
        if remote and current and staged_bytes + file.size > max_bytes:
            yield current
            current, staged_bytes = [], 0
        current.append(file)
        if remote:
            staged_bytes += file.size
    if current:
        yield current


def _store_for(
    location: SourceLocation, options: ConnectionOptions, stores: dict[SourceLocation, Store | SourceError], connections: ExitStack
) -> Store:
    """One connection per bucket or server, opened on first use and kept for the whole staging; a connection that
    failed is not retried for every file."""
    container = location.container()
    if container not in stores:
        try:
            stores[container] = connections.enter_context(open_store(container, options))
        except SourceError as exc:
            stores[container] = exc
    store = stores[container]
    if isinstance(store, SourceError):
        raise SourceError(str(store))
    return store


def _copy(file: SourceFile, location: SourceLocation, target: Path, store: Store) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("wb") as handle:
        sink = CopySink(handle)
        store.download(location.container(), location.key_of(file.uri), sink, etag=file.etag)
    if sink.size != file.size:
        raise SourceError(
            f"{file.uri}: copied {sink.size} bytes but {file.size} were listed; the file changed since it was listed, "
            "re-run the batch"
        )
    if file.etag and _MD5.fullmatch(file.etag) and sink.md5_hex != file.etag:
        raise SourceError(f"{file.uri}: the copy's MD5 does not match the listing; the file changed, re-run the batch")


def stage_by_root(roots: Sequence[SourceRoot], workdir: Path, max_bytes: int, failures: dict[str, str]) -> Stage:
    """A ``stage`` for :func:`~synapse_dagster.core.deliver.upload.upload_files`: local files pass through, remote
    ones are copied per source (each has its own credentials), bounded by ``max_bytes``."""

    @contextmanager
    def stage(files: list[SourceFile]) -> Iterator[Iterator[dict[str, Path]]]:
        def slices() -> Iterator[dict[str, Path]]:
            for root in roots:
                mine = [f for f in files if f.source_spec == root.spec]
                if not mine:
                    continue
                if root.is_local:
                    yield {f.fingerprint: Path(f.uri) for f in mine}
                    continue
                with staged_copies(mine, root.options, workdir, max_bytes, failures=failures) as copies:
                    yield from copies

        yield slices()

    return stage
