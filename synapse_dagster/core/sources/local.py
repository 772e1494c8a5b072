"""Local disk (and anything mounted there: NFS, SMB mounts, a NAS share) as a store like the others.

Folders are walked by name with one ``lstat`` per entry (a second ``stat`` only for a link that is followed), which
gives size and mtime. On 20,000 files ``os.scandir`` with ``stat`` took a fifth of the time of
``UPath('file://').rglob`` with ``stat`` (half of ``UPath(path).rglob``'s); this walk costs the same system calls,
and keeps memory flat: nothing is collected before it is yielded but the names of the folder being listed.
"""

from __future__ import annotations

import os
import stat
from functools import partial
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from synapse_dagster.core.sources.files import SourceError, SourceFile
from synapse_dagster.core.sources.location import SourceLocation
from synapse_dagster.core.sources.options import ConnectionOptions
from synapse_dagster.core.sources.store import CHUNK_SIZE, CopySink, ListedFile


SYMLINK_POLICIES = ("within_root", "never", "always")


class LocalStore:
    def __init__(self, follow_symlinks: str = "within_root") -> None:
        if follow_symlinks not in SYMLINK_POLICIES:
            raise SourceError(f"follow_symlinks must be one of {', '.join(SYMLINK_POLICIES)}, not '{follow_symlinks}'")
        self.follow_symlinks = follow_symlinks

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
        return _Walk(Path(location.path).resolve(), recursive, self.follow_symlinks).walk()

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


class _Walk:
    """One listing of a folder tree. Nothing outside ``root`` is listed unless the policy says ``always``, every
    folder is entered once (so a link loop ends), and what cannot be a data file (a FIFO would block a read
    forever) is listed as refused, never dropped.

    Memory is what a million-file tree allows: a folder's entries are held as names only while it is listed, and
    folders already entered are remembered as one int each. The name a folder was first listed under is kept only
    for folders reached through a link; any other folder's is its real path below the root.
    """

    def __init__(self, root: Path, recursive: bool, policy: str) -> None:
        self.root, self.recursive, self.policy = str(root), recursive, policy
        st = os.stat(root)
        self.entered: set[int] = {_folder_id(st)}
        self.linked: dict[int, str] = {}  # folders reached through a followed link: the name they were listed as

    def walk(self) -> Iterator[ListedFile]:
        """Each folder's files (sorted), then its sub-folders, depth first: the order of a recursive listing. A
        folder's sub-folders wait as names (a link's as its target), not as objects."""
        stack: list[Iterator[_Folder]] = [iter([_Folder(self.root, "", False)])]
        while stack:
            here = next(stack[-1], None)
            if here is None:
                stack.pop()
                continue
            names: list[str] = []
            links: dict[str, str] = {}
            yield from self.folder(here, names, links)
            if self.recursive and names:
                stack.append(_subfolders(here, names, links))

    def folder(self, here: _Folder, names: list[str], links: dict[str, str]) -> Iterator[ListedFile]:
        """The files of one folder; its sub-folders' names go to ``names`` (and a followed link's target to ``links``)."""
        directory, prefix = here.path, here.prefix
        try:
            entries = sorted(os.listdir(directory))
        except OSError as exc:
            if not prefix:
                raise SourceError(f"cannot list {directory}: {exc.strerror or exc}; fix its permissions") from None
            yield _refused(prefix.rstrip("/"), directory, f"is a folder that cannot be listed ({exc.strerror or exc}); "
                           "fix its permissions")
            return
        base = directory if directory.endswith("/") else f"{directory}/"  # os.path.join costs more than the stat
        for name in entries:
            path = f"{base}{name}"
            try:
                st = os.lstat(path)
            except OSError:
                st = None  # looked at again by entry(), which says why
            if st is not None and stat.S_ISREG(st.st_mode):  # nearly every entry: listed here, without a call
                yield _listed((f"{prefix}{name}", path, st.st_size, st.st_mtime_ns, None, None))
                continue
            listed = self.entry(path, f"{prefix}{name}", here.via_link, st)
            if isinstance(listed, _Folder):
                names.append(name)
                if listed.path != path:
                    links[name] = listed.path
            elif listed is not None:
                yield listed

    def entry(self, path: str, rel: str, via_link: bool, st: os.stat_result | None = None) -> ListedFile | _Folder | None:
        """A file, a sub-folder to enter, a refused entry, or ``None`` for a name that vanished; ``st`` is its
        ``lstat`` when the caller has it."""
        try:
            st = st or os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                link, (path, refusal) = path, self.link_target(path)
                if refusal:
                    return _refused(rel, link, refusal)
                via_link, st = True, os.stat(path)
        except FileNotFoundError:
            return None  # deleted between the folder's listing and this look: it is not part of the batch
        except OSError as exc:
            return _refused(rel, path, f"cannot be looked at ({exc.strerror or exc}); fix its permissions")
        if stat.S_ISDIR(st.st_mode):
            return self.enter(path, rel, st, via_link)
        if not stat.S_ISREG(st.st_mode):
            return _refused(rel, path, "is not a regular file (a FIFO, socket or device); remove it from the source")
        return _listed((rel, path, st.st_size, st.st_mtime_ns, None, None))

    def enter(self, path: str, rel: str, st: os.stat_result, via_link: bool) -> ListedFile | _Folder:
        key = _folder_id(st)
        if key in self.entered:
            return _refused(rel, path, f"leads to a folder already listed as '{self.listed_as(key, path)}' (a link "
                                       "loop or a second path to it); remove the link")
        self.entered.add(key)
        if via_link:
            self.linked[key] = rel
        return _folder((path, f"{rel}/", via_link))

    def listed_as(self, key: int, path: str) -> str:
        if key in self.linked:
            return self.linked[key]
        real = os.path.relpath(os.path.realpath(path), self.root)
        return "(the source folder)" if real == "." else real

    def link_target(self, link: str) -> tuple[str, str | None]:
        """Where a symbolic link leads, or why it is not followed."""
        if self.policy == "never":
            return link, "is a symbolic link, and follow_symlinks is 'never'; copy the file in, or change the policy"
        try:
            target = os.path.realpath(link, strict=True)
        except FileNotFoundError:
            return link, f"is a broken symbolic link (to '{os.readlink(link)}', which does not exist); fix or remove it"
        except OSError as exc:
            return link, f"is a symbolic link that cannot be resolved ({exc.strerror or exc}: a link loop?); remove it"
        if self.policy == "within_root" and os.path.commonpath([self.root, target]) != self.root:
            return link, (f"is a symbolic link to '{target}', outside the source folder; it is not read (copy the file "
                          "in, or set follow_symlinks: always on this source)")
        return target, None


class _Folder(NamedTuple):
    path: str
    prefix: str
    via_link: bool  # reached through a followed link: its folders' names are remembered (see _Walk)


def _subfolders(parent: _Folder, names: list[str], links: dict[str, str]) -> Iterator[_Folder]:
    for name in names:
        target = links.get(name)
        yield _folder((target or f"{parent.path.rstrip('/')}/{name}", f"{parent.prefix}{name}/", parent.via_link or bool(target)))


_listed = partial(tuple.__new__, ListedFile)  # ListedFile(...) without its Python __new__: one per file listed
_folder = partial(tuple.__new__, _Folder)


def _folder_id(st: os.stat_result) -> int:
    return (st.st_dev << 64) | st.st_ino


def _refused(rel: str, uri: str, reason: str) -> ListedFile:
    return ListedFile(rel, uri, 0, 0, None, reason)


def connect(location: SourceLocation, options: ConnectionOptions, *, checking: bool = False) -> LocalStore:
    return LocalStore(options.follow_symlinks)


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


