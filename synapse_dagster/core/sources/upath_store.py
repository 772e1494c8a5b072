"""A Store over any universal-pathlib / fsspec filesystem with bucket addressing, so a new fsspec-backed source
is one small provider module: how to build the filesystem, and how to word its errors.

The walk goes one folder at a time (one ``ls`` each, held in memory only while that folder is walked), depth
first in key order, so a listing of millions of files never exists in memory and the first file arrives after
one request. ``find``/``rglob`` would build the whole listing first. Keys are joined as plain strings, not as
UPath segments: object keys such as ``a//b`` or ``./x`` are legal and a path join would rewrite them.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, NamedTuple

from fsspec import AbstractFileSystem
from upath import UPath

from synapse_dagster.core.redaction import redact
from synapse_dagster.core.sources.files import SourceError
from synapse_dagster.core.sources.location import SourceLocation
from synapse_dagster.core.sources.store import CHUNK_SIZE, CopySink, ListedFile, datetime_ns

Info = Mapping[str, Any]  # one entry as fsspec's ``ls(detail=True)`` gives it: name, type, size, …
_MD5_ETAG = re.compile(r"[0-9a-fA-F]{32}(-\d+)?")
_MTIME_KEYS = ("last_modified", "LastModified", "mtime", "updated", "modified")


@dataclass(frozen=True)
class Hooks:
    """What a provider module tells the generic store.

    ``explain(exc, location, reading)`` words a filesystem exception for a person (naming ``location.uri``, never
    a secret) or returns None to let it propagate; FileNotFoundError is handled here. ``list_folder(fs, path)``
    lists one folder like ``fs.ls(path, detail=True)`` (the default): a provider replaces it where its
    filesystem's ``ls`` misbehaves. The filesystem must not cache listings (``use_listings_cache=False``).
    """

    explain: Callable[[BaseException, SourceLocation, bool], str | None]
    where: str = ""  # " at <endpoint>" for messages, when the endpoint is not the provider's default
    bucket_word: str = "bucket"  # "container" for Azure
    list_folder: Callable[[AbstractFileSystem, str], Iterable[Info]] | None = None
    close: Callable[[], None] | None = None


class _Entry(NamedTuple):
    path: str  # the filesystem path, "bucket/key" without a trailing '/'
    is_dir: bool
    size: int
    mtime_ns: int
    tag: str | None


class UPathStore:
    """One filesystem (``root.fs``) serving every bucket it can reach; ``root`` is the account or service root."""

    def __init__(self, root: UPath, hooks: Hooks) -> None:
        self._fs: AbstractFileSystem = root.fs
        self._hooks = hooks

    def close(self) -> None:
        if self._hooks.close is not None:
            self._hooks.close()

    def check(self, location: SourceLocation, *, allow_empty: bool = False) -> None:
        with self._errors(location):
            if next(self.iter_files(location, recursive=True), None) is not None or allow_empty:
                return  # iter_files has already refused a missing bucket
            where, word = self._hooks.where, self._hooks.bucket_word
            if not location.path:
                raise SourceError(f"{location.uri}{where}: the {word} is empty; nothing to list")
            is_file = self._fs.isfile(_join(location.bucket, location.path.rstrip("/")))
            hint = "; it names an object, not a folder" if is_file else ""
            raise SourceError(
                f"{location.uri}{where}: no objects under this prefix (missing, or an empty folder){hint}; "
                f"check the path ({word} folders exist only while they hold objects)"
            )

    def iter_files(self, location: SourceLocation, *, recursive: bool, start_after: str | None = None) -> Iterator[ListedFile]:
        if start_after is not None:
            raise ValueError(f"{location.scheme} listings cannot resume after a key")
        top = _join(location.bucket, location.path)
        with self._errors(location):
            stack = [iter(self._top_entries(location, top))]
            while stack:
                entry = next(stack[-1], None)
                if entry is None:
                    stack.pop()
                elif entry.is_dir:
                    if recursive:
                        stack.append(iter(self._entries(entry.path, missing_ok=True)))
                else:
                    key = entry.path[len(location.bucket) + 1 :]
                    yield ListedFile(key[len(location.path) :], location.file_uri(key), entry.size, entry.mtime_ns,
                                     entry.tag)

    def iter_subfolders(self, location: SourceLocation, *, start_after: str | None) -> Iterator[str]:
        top = _join(location.bucket, location.path)
        with self._errors(location):
            names = sorted(e.path.rsplit("/", 1)[-1] for e in self._top_entries(location, top) if e.is_dir)
        yield from (n for n in names if start_after is None or n > start_after)

    def download(self, location: SourceLocation, key: str, out: CopySink, *, etag: str | None) -> None:
        """Chunk by chunk; a filesystem cannot make the read conditional on ``etag``, so the caller's MD5 check
        against the listed tag is what catches an object replaced since the listing."""
        with self._errors(replace(location, path=key), reading=True):
            with self._fs.open(_join(location.bucket, key), "rb", block_size=CHUNK_SIZE, cache_type="none") as f:
                while chunk := f.read(CHUNK_SIZE):
                    out.write(chunk)

    def _top_entries(self, location: SourceLocation, top: str) -> list[_Entry]:
        """The listed folder itself: when it is not there, a missing bucket is an error, a missing prefix is not."""
        try:
            return self._entries(top)
        except FileNotFoundError:
            if not self._fs.exists(location.bucket):
                raise SourceError(
                    f"{location.uri}: {self._hooks.bucket_word} '{location.bucket}' does not exist{self._hooks.where}; "
                    f"check the {self._hooks.bucket_word} name and endpoint"
                ) from None
            return []

    def _entries(self, folder: str, *, missing_ok: bool = False) -> list[_Entry]:
        """One folder's files and sub-folders in key order (a folder sorts as its 'name/' prefix would), without
        zero-byte folder placeholders."""
        try:
            infos = list(self._hooks.list_folder(self._fs, folder) if self._hooks.list_folder
                         else self._fs.ls(folder, detail=True))
        except FileNotFoundError:
            if missing_ok:
                return []  # deleted since its parent was listed
            raise
        prefix = f"{folder}/"
        dirs: dict[str, _Entry] = {}
        files: dict[str, _Entry] = {}
        for info in infos:
            raw = str(info["name"]).lstrip("/")
            path = raw.rstrip("/")
            if not path.startswith(prefix):
                continue  # the folder itself, or a placeholder blob named after it
            if info.get("type") == "directory":
                dirs[path] = _Entry(path, True, 0, 0, None)
            elif not raw.endswith("/"):  # a key ending in '/' is a "folder" placeholder some tools create
                files[path] = _Entry(path, False, int(info.get("size") or 0), _mtime_ns(info), content_tag(info))
        for path in [p for p, f in files.items() if p in dirs and f.size == 0]:
            del files[path]  # a zero-byte marker beside the folder it stands for (ADLS, some tools)
        return sorted([*dirs.values(), *files.values()], key=lambda e: f"{e.path}/" if e.is_dir else e.path)

    @contextmanager
    def _errors(self, location: SourceLocation, *, reading: bool = False) -> Iterator[None]:
        try:
            yield
        except SourceError:
            raise
        except Exception as exc:
            if reading and isinstance(exc, FileNotFoundError):
                message = (f"{location.uri}: the object no longer exists{self._hooks.where} (deleted since it was "
                           "listed?); re-run the batch")
            else:
                message = self._hooks.explain(exc, location, reading)
            if message is None:
                if not isinstance(exc, OSError):
                    raise
                message = f"{location.uri}{self._hooks.where}: {type(exc).__name__}: {exc}"
            raise SourceError(redact(message)) from None


def _join(bucket: str, key: str) -> str:
    return f"{bucket}/{key}".rstrip("/")


def _mtime_ns(info: Info) -> int:
    """Modification time in ns from whichever key the filesystem uses (a datetime, epoch seconds or ISO text)."""
    for key in _MTIME_KEYS:
        value = info.get(key)
        if isinstance(value, str):
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if isinstance(value, datetime):
            return datetime_ns(value if value.tzinfo else value.replace(tzinfo=UTC))
        if isinstance(value, int | float) and not isinstance(value, bool):
            return int(value * 1_000_000_000)
    return 0


def content_tag(info: Info) -> str | None:
    """The content MD5 as hex where the filesystem has one: Azure's ``content_settings.content_md5`` (bytes),
    an ``md5`` field (bytes, hex or base64), or an S3-style ETag. Other ETags (Azure's '0x8D…') say nothing
    about the content and give None."""
    settings = info.get("content_settings")
    md5 = settings.get("content_md5") if isinstance(settings, Mapping) else getattr(settings, "content_md5", None)
    md5 = md5 or info.get("md5") or info.get("md5Hash")
    if isinstance(md5, bytes | bytearray) and len(md5) == 16:
        return bytes(md5).hex()
    if isinstance(md5, str):
        if _MD5_ETAG.fullmatch(md5):
            return md5.lower()
        try:
            decoded = base64.b64decode(md5, validate=True)
        except ValueError:
            decoded = b""
        if len(decoded) == 16:
            return decoded.hex()
    etag = str(info.get("ETag") or info.get("etag") or "").strip('"')
    return etag.lower() if _MD5_ETAG.fullmatch(etag) else None
