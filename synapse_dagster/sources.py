"""Where a pipeline's files are: its configured sources resolved to locations, and the folders of one batch.

A source path is local (``/abs``, ``./rel``, ``../rel``, ``~/…``; relative to the pipeline file), remote
(``s3://``, ``gs://``, ``sftp://``) or storage-relative (anything else), the last resolved through the
pipeline's Synapse storage as the seed's ``get_pathlib`` does. Everything is checked before listing so a
typo or a missing credential fails with the pipeline, the spec and the path named, never a secret.
"""

from __future__ import annotations

import contextlib
import io
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synapse_dagster.core.batches.windows import WindowSpec
from synapse_dagster.core.sources.files import SourceError, SourceFile, resolve_local_source
from synapse_dagster.core.sources.location import SourceLocation, parse_source, resolve_storage_path, split_uri
from synapse_dagster.core.sources.options import ConnectionOptions
from synapse_dagster.core.sources.listing import check_source, list_remote, list_subfolders, open_store
from synapse_dagster.core.sources.store import CopySink, RemoteStore
from synapse_dagster.core.organize.specs import CollectionSpecs
from synapse_dagster.partitions import check_batch_key
from synapse_dagster.pipeline_config import BatchMode, ConnectionConfig, PipelineConfig

REMOTE_SCHEMES = ("s3", "gs", "gcs", "sftp")
StorageLookup = Callable[[], Mapping[str, Any]]


@dataclass(frozen=True)
class SourceRoot:
    """One configured source, resolved. ``options`` may hold secrets: never pickle or log it."""

    spec: str | None  # None in single-path mode
    location: SourceLocation
    options: ConnectionOptions
    recursive: bool
    label: str  # "pipeline 'x', spec 'image_1'": how errors name it

    @property
    def is_local(self) -> bool:
        return self.location.scheme == "local"

    def child(self, name: str) -> SourceRoot:
        return SourceRoot(self.spec, self.location.child(name), self.options, self.recursive, self.label)


def storage_lookup(synapse: Any, storage_id: int) -> StorageLookup:
    """The pipeline's Synapse storage with its configuration, fetched only when a path needs it.

    ``synapse`` is a SynapseResource; ``get_storage`` returns a pydantic model (the seed's docs index it
    like a dict, which fails), so it is dumped here once.
    """

    def lookup() -> Mapping[str, Any]:
        found = synapse.client().get_storage(storage_id)
        return found.model_dump() if hasattr(found, "model_dump") else dict(found)

    return lookup


def source_kind(path: str) -> str:
    """``local``, ``remote`` or ``storage`` (the seed's table of path types)."""
    if "://" in path:
        scheme = path.split("://", 1)[0].lower()
        if scheme == "file":
            return "local"
        if scheme in REMOTE_SCHEMES:
            return "remote"
        raise SourceError(f"source '{path}': scheme '{scheme}://' is not supported; use s3://, gs://, sftp:// or a path")
    if path.startswith(("/", "./", "../", "~")) or path in (".", ".."):
        return "local"
    return "storage"


def connection_options(config: ConnectionConfig | None, label: str, environ: Mapping[str, str] | None = None) -> ConnectionOptions:
    env = os.environ if environ is None else environ
    options = ConnectionOptions.from_env(env)
    if config is None:
        return options
    values: dict[str, Any] = {k: getattr(config, k) for k in (
        "endpoint_url", "region", "gcs_endpoint", "gcs_project", "sftp_username", "sftp_key_file",
        "sftp_known_hosts", "sftp_host_key_policy")}
    for secret, variable in config.secrets_from_env.items():
        value = env.get(variable)
        if not value:
            raise SourceError(f"{label}: environment variable {variable} (connection.secrets_from_env.{secret}) is not set")
        values[secret] = value
    return options.with_values(**values)


def resolve_roots(pipeline: PipelineConfig, base_dir: Path, storage: StorageLookup | None = None) -> list[SourceRoot]:
    roots = []
    for spec, source in pipeline.source_paths().items():
        label = f"pipeline '{pipeline.name}'" + (f", spec '{spec}'" if spec else "")
        try:
            options = connection_options(source.connection, label)
            kind = source_kind(source.path)
            if kind == "local":
                path = source.path[len("file://"):] if source.path.startswith("file://") else source.path
                location = SourceLocation("local", path=str(resolve_local_source(path, base_dir)))
            elif kind == "remote":
                location = parse_source(source.path)
            else:
                if storage is None:
                    raise SourceError(f"source '{source.path}' is storage-relative, which needs Synapse storage "
                                      f"{pipeline.storage}; prefix it with ./ if it is a local folder")
                location, options = resolve_storage_path(source.path, storage(), options)
        except SourceError as exc:
            raise SourceError(f"{label}: {exc}") from None
        roots.append(SourceRoot(spec, location, options, source.is_recursive, label))
    return roots


def batch_roots(pipeline: PipelineConfig, batch: str, roots: list[SourceRoot]) -> list[SourceRoot]:
    """The batch's folder in each source (``folders`` mode) or the sources themselves (other modes), checked."""
    check_batch_key(batch)
    if pipeline.batches.mode is BatchMode.WINDOWS:
        try:
            WindowSpec.parse(pipeline.batches.window).bounds(batch)
        except ValueError as exc:
            raise SourceError(f"pipeline '{pipeline.name}': {exc}") from None
    out = []
    for root in roots:
        batch_root = root.child(batch) if pipeline.batches.mode is BatchMode.FOLDERS else root
        try:
            check_source(batch_root.location, batch_root.options)
        except SourceError as exc:
            where = f"batch '{batch}' " if pipeline.batches.mode is BatchMode.FOLDERS else ""
            raise SourceError(f"{root.label}: {where}{exc}") from None
        out.append(batch_root)
    return out


def check_multi_path_specs(pipeline: PipelineConfig, specs: CollectionSpecs) -> None:
    if pipeline.assets is None:
        return
    unknown = sorted(set(pipeline.assets) - {s.name for s in specs.specs})
    if unknown:
        raise SourceError(
            f"pipeline '{pipeline.name}': assets name spec(s) {unknown} that data collection {specs.collection_id} "
            f"does not define (it has {[s.name for s in specs.specs]})"
        )
    missing = [s.name for s in specs.required if s.name not in pipeline.assets]
    if missing:
        raise SourceError(f"pipeline '{pipeline.name}': required spec(s) {missing} have no source under 'assets'")


def list_batch(roots: list[SourceRoot], pipeline: PipelineConfig | None = None, batch: str | None = None) -> Iterator[SourceFile]:
    """The batch's files; in windows mode only those modified within the batch's window."""
    window = None
    if pipeline is not None and batch is not None and pipeline.batches.mode is BatchMode.WINDOWS:
        window = WindowSpec.parse(pipeline.batches.window).bounds(batch)
    for root in roots:
        for file in list_remote(root.location, root.options, recursive=root.recursive, source_spec=root.spec):
            if window is None or window[0] <= file.mtime_ns < window[1]:
                yield file


def root_for(file: SourceFile, roots: list[SourceRoot]) -> SourceRoot:
    return next(r for r in roots if r.spec == file.source_spec)


def read_small(file: SourceFile, roots: list[SourceRoot], max_bytes: int = 2**20) -> bytes:
    """The bytes of a small file (sidecar, sheet) wherever it lives; refuses anything bigger than ``max_bytes``."""
    if file.size > max_bytes:
        raise ValueError(f"it is {file.size:,} bytes, more than {max_bytes:,}")
    if "://" not in file.uri:
        with open(file.uri, "rb") as handle:
            return handle.read()
    root = root_for(file, roots)
    buffer = io.BytesIO()
    _, _, key = split_uri(file.uri)
    with open_store(root.location, root.options) as store:
        store.download(root.location, key, CopySink(buffer), etag=file.etag)
    return buffer.getvalue()


def list_existing_batches(pipeline: PipelineConfig, roots: list[SourceRoot]) -> list[str]:
    """Batch folders present in every source of a ``folders``-mode pipeline, sorted; unusable names left out."""
    if pipeline.batches.mode is not BatchMode.FOLDERS:
        return []
    found: set[str] | None = None
    for root in roots:
        names = set(list_subfolders(root.location, root.options))
        found = names if found is None else found & names
    valid = []
    for name in sorted(found or ()):
        try:
            valid.append(check_batch_key(name))
        except ValueError:
            continue
    return valid


class FolderBatches:
    """The sensor's view of a folders-mode pipeline: batch names, and whether a batch is complete.

    Use it as a context manager: one connection per source serves the whole tick (opening an S3 client
    costs more than listing one small folder).
    """

    def __init__(self, pipeline: PipelineConfig, roots: list[SourceRoot], clock: Callable[[], float] = time.time) -> None:
        self.pipeline, self.roots, self.clock = pipeline, roots, clock
        self._stores: dict[int, RemoteStore] = {}
        self._exit = contextlib.ExitStack()

    def __enter__(self) -> FolderBatches:
        for index, root in enumerate(self.roots):
            if not root.is_local:
                self._stores[index] = self._exit.enter_context(open_store(root.location, root.options))
        return self

    def __exit__(self, *exc: object) -> None:
        self._exit.close()
        self._stores.clear()

    def names(self, start_after: str | None) -> Iterator[str]:
        first = self.roots[0]
        yield from list_subfolders(first.location, first.options, start_after=start_after, store=self._stores.get(0))

    def readiness(self, name: str) -> tuple[bool, str]:
        marker = self.pipeline.batches.ready_marker
        settle = self.pipeline.batches.settle_seconds
        for index, root in enumerate(self.roots):
            folder = root.child(name)
            where = f" in {root.spec}'s source" if root.spec else ""
            newest, has_marker, count = 0, False, 0
            try:
                for f in list_remote(folder.location, folder.options, recursive=bool(settle) and root.recursive,
                                     store=self._stores.get(index)):
                    count += 1
                    newest = max(newest, f.mtime_ns)
                    has_marker = has_marker or f.relative_path == marker
                    if marker and has_marker and not settle:
                        break
            except SourceError as exc:
                return False, f"cannot be read{where}: {exc}"
            if count == 0:
                return False, f"empty or missing{where}"
            if marker and not has_marker:
                return False, f"no {marker} marker yet{where}"
            if settle and not marker:
                age = self.clock() - newest / 1e9
                if age < settle:
                    return False, f"newest file is {age:.0f}s old{where}, settling for {settle}s"
        return True, ""
