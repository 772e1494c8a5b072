"""A pipeline's sources resolved: each configured path turned into a location plus the options to reach it.

A source path is local (``/abs``, ``./rel``, ``../rel``, ``~/…``; relative to the pipeline file), a URL of a
registered provider (``s3://``, ``gs://``, ``sftp://`` …) or storage-relative (anything else), the last resolved
through the pipeline's Synapse storage as the SDK's ``get_pathlib`` does. Resolution happens once per run;
everything downstream works with :class:`SourceRoot` values.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from synapse_dagster.core.sources import registry
from synapse_dagster.core.sources.files import SourceError, SourceFile
from synapse_dagster.core.sources.listing import check_source, list_files, read_bytes
from synapse_dagster.core.sources.listing_progress import ListingProgress
from synapse_dagster.core.sources.local import resolve_local_source
from synapse_dagster.core.sources.location import SourceLocation, is_url, parse_source, shown
from synapse_dagster.core.sources.options import ConnectionOptions
from synapse_dagster.core.sources.storage import StorageLookup, resolve_storage_path


@dataclass(frozen=True)
class SourceSetting:
    """One configured source as plain data: what the pipeline file says, nothing resolved yet."""

    spec: str | None  # None in single-path mode
    path: str
    recursive: bool = True
    connection: Mapping[str, Any] = field(default_factory=dict)  # non-secret ConnectionOptions fields
    secrets_from_env: Mapping[str, str] = field(default_factory=dict)  # secret field -> environment variable


@dataclass(frozen=True)
class SourceRoot:
    """One configured source, resolved. ``options`` may hold secrets: never pickle or log it."""

    spec: str | None
    location: SourceLocation
    options: ConnectionOptions
    recursive: bool
    label: str  # "pipeline 'x', spec 'image_1'": how errors name it

    @property
    def is_local(self) -> bool:
        return self.location.is_local

    def child(self, name: str) -> SourceRoot:
        return SourceRoot(self.spec, self.location.child(name), self.options, self.recursive, self.label)


def source_kind(path: str) -> str:
    """``local``, ``url`` or ``storage`` (the seed's table of path types)."""
    if is_url(path):
        provider = registry.for_url_scheme(path.split("://", 1)[0])
        if provider is None:
            raise SourceError(f"source '{path}': scheme '{path.split('://', 1)[0]}://' is not supported; use "
                              f"{', '.join(registry.url_schemes())} or a path")
        return "local" if provider.scheme == "local" else "url"
    if path.startswith(("/", "./", "../", "~")) or path in (".", ".."):
        return "local"
    return "storage"


def connection_options(setting: SourceSetting, label: str, environ: Mapping[str, str] | None = None) -> ConnectionOptions:
    env = os.environ if environ is None else environ
    values: dict[str, Any] = dict(setting.connection)
    for secret, variable in setting.secrets_from_env.items():
        value = env.get(variable)
        if not value:
            raise SourceError(f"{label}: environment variable {variable} (connection.secrets_from_env.{secret}) is not set")
        values[secret] = value
    return ConnectionOptions.from_env(env).with_values(**values)


def resolve_roots(
    settings: Sequence[SourceSetting], *, owner: str, base_dir: Path, storage: StorageLookup | None = None,
    storage_id: int | None = None,
) -> list[SourceRoot]:
    """Resolve every source of ``owner`` (e.g. "pipeline 'x'"); ``storage`` is asked only for storage-relative paths."""
    roots = []
    for setting in settings:
        label = owner + (f", spec '{setting.spec}'" if setting.spec else "")
        try:
            location, options = _resolve(setting, label, base_dir, storage, storage_id)
        except SourceError as exc:
            raise SourceError(f"{label}: {exc}") from None
        roots.append(SourceRoot(setting.spec, location, options, setting.recursive, label))
    return roots


def _resolve(
    setting: SourceSetting, label: str, base_dir: Path, storage: StorageLookup | None, storage_id: int | None
) -> tuple[SourceLocation, ConnectionOptions]:
    options = connection_options(setting, label)
    kind = source_kind(setting.path)
    if kind == "local":
        path = setting.path.removeprefix("file://")
        return SourceLocation("local", path=str(resolve_local_source(path, base_dir))), options
    if kind == "url":
        return parse_source(setting.path), options
    if storage is None:
        raise SourceError(f"source '{setting.path}' is storage-relative, which needs Synapse storage {storage_id}; "
                          "prefix it with ./ if it is a local folder")
    return resolve_storage_path(setting.path, storage(), options)


def batch_roots(roots: Sequence[SourceRoot], batch: str, *, per_batch_folder: bool) -> list[SourceRoot]:
    """The batch's folder in each source (``per_batch_folder``) or the sources themselves, each checked."""
    out = []
    for root in roots:
        batch_root = root.child(batch) if per_batch_folder else root
        try:
            check_source(batch_root.location, batch_root.options)
        except SourceError as exc:
            where = f"batch '{batch}' " if per_batch_folder else ""
            raise SourceError(f"{root.label}: {where}{exc}") from None
        out.append(batch_root)
    return out


def list_roots(roots: Sequence[SourceRoot], window: tuple[int, int] | None = None, *,
               on_progress: Callable[[str], None] | None = None, every_s: float = 10.0) -> Iterator[SourceFile]:
    """Every file of every root; with ``window`` only those modified within ``[start, end)`` (epoch ns).
    ``on_progress`` gets a line about every ``every_s`` of a long listing (what the store listed, before the
    window), naming the root by its URI with any secret masked."""
    for root in roots:
        listed = list_files(root.location, root.options, recursive=root.recursive, source_spec=root.spec)
        for file in ListingProgress(shown(root.location.uri), every_s=every_s).counting(listed, on_progress):
            if window is None or window[0] <= file.mtime_ns < window[1]:
                yield file


def root_for(file: SourceFile, roots: Sequence[SourceRoot]) -> SourceRoot:
    return next(r for r in roots if r.spec == file.source_spec)


def read_small(file: SourceFile, roots: Sequence[SourceRoot], max_bytes: int = 2**20) -> bytes:
    """The bytes of a small file (sidecar, sheet) wherever it lives; refuses anything bigger than ``max_bytes``."""
    root = root_for(file, roots)
    return read_bytes(file, root.location, root.options, max_bytes)
