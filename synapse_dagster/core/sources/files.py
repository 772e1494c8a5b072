"""What a listing yields, wherever the files live: :class:`SourceFile` records, NAS and desktop junk marked
rather than dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import NamedTuple

from synapse_dagster.core.tables.row_table import Codec

# Files and folders that NAS boxes, desktops and VCS tools leave behind. They are never data, so they
# are reported as excluded instead of surfacing as "unmatched" noise.
EXCLUDED_DIRS = frozenset(
    {"@eaDir", ".@__thumb", "@Recycle", "#recycle", "#snapshot", ".synology", "__pycache__", ".git", ".svn",
     ".Trashes", ".Spotlight-V100", ".fseventsd", "$RECYCLE.BIN", "System Volume Information"}
)
EXCLUDED_FILES = frozenset({".DS_Store", "Thumbs.db", "desktop.ini", ".gitkeep", "Icon\r", ".localized"})


class SourceError(ValueError):
    """A source path that cannot be listed; the message names the path and what to do."""


class SourceFile(NamedTuple):
    """One file of a batch. ``relative_path`` is POSIX and relative to the batch root of its source.

    A tuple in the batch tables' column order (:data:`FILE_COLUMNS`), so a table row is a record and a record is
    a table row, with no conversion either way: a million-file batch passes each file through several tables."""

    uri: str
    relative_path: str
    size: int
    mtime_ns: int
    source_spec: str | None = None  # set in multi-path mode: the spec whose source folder held the file
    excluded_reason: str | None = None
    etag: str | None = None  # content tag from an object store (S3 ETag, GCS MD5); None for local and SFTP files
    refused_reason: str | None = None  # listed, but never read: a name or link that could reach outside the source

    @property
    def set_aside(self) -> str | None:
        """Why this file is no data candidate at all (refused, or NAS junk), or ``None``."""
        return self.refused_reason or self.excluded_reason

    # Names are read with str operations, not PurePosixPath: at a million files, parsing a path object for each
    # property was a tenth of the planning time. The results are pathlib's (see ``_suffix_at``).
    @property
    def name(self) -> str:
        tail = self.relative_path.rpartition("/")[2]
        if tail and tail != ".":
            return tail
        parts = self.parts
        return parts[-1] if parts else ""

    @property
    def extension(self) -> str:
        name = self.name
        dot = _suffix_at(name)
        return name[dot:].lower() if dot else ""

    @property
    def stem(self) -> str:
        name = self.name
        dot = _suffix_at(name)
        return name[:dot] if dot else name

    @property
    def parts(self) -> tuple[str, ...]:
        return path_parts(self.relative_path)

    @property
    def fingerprint(self) -> str:
        """Identity of this exact content version, cheap to compute: a changed file gets a new one.

        An object store's content tag beats the mtime: it changes exactly when the bytes do.
        """
        return f"{self.uri}|{self.size}|{self.etag or self.mtime_ns}"


FILE_COLUMNS = ("uri", "relative_path", "size", "mtime_ns", "source_spec", "excluded_reason", "etag", "refused_reason")


def file_row(f: SourceFile) -> tuple:
    return f


# A table row (always all the columns) as a record: tuple.__new__ in C, no Python call per file.
file_from_row: Callable[[tuple], SourceFile] = partial(tuple.__new__, SourceFile)  # type: ignore[assignment]


def spec_files_rows(files: dict[str, SourceFile]) -> tuple:
    """A unit's ``{spec: file}`` as plain rows, for a table payload."""
    return tuple((spec, *f) for spec, f in files.items())


def spec_files_from_rows(rows: tuple) -> dict[str, SourceFile]:
    return {row[0]: file_from_row(row[1:]) for row in rows}


FILE_CODEC = Codec("source_file", FILE_COLUMNS, file_row, file_from_row, texts=(0, 1))


def _suffix_at(name: str) -> int:
    """Where pathlib's suffix of ``name`` starts, or 0 when it has none ('.bashrc', 'a.' and '..' have none)."""
    dot = name.rfind(".")
    return dot if 0 < dot < len(name) - 1 else 0


def path_parts(relative_path: str) -> tuple[str, ...]:
    """pathlib's parts of a relative POSIX path: empty and '.' segments dropped."""
    parts = relative_path.split("/")
    if "" in parts or "." in parts:
        return tuple(p for p in parts if p and p != ".")
    return tuple(parts)


def junk_reason(name: str, is_dir: bool) -> str | None:
    if is_dir and name in EXCLUDED_DIRS:
        return f"system folder '{name}'"
    if not is_dir and name in EXCLUDED_FILES:
        return f"system file '{name}'"
    if not is_dir and name.startswith("._"):
        return "macOS resource fork ('._' file)"
    return None


def excluded_reason(relative_path: str) -> str | None:
    """Why a file is NAS/desktop junk: its outermost junk folder first, then its own name.

    A listing asks this once per object, so a plain name (no empty or '.' segment) is split with ``str.split``
    and, unless some segment is a junk name, answered with one set test; anything else goes through
    :func:`path_parts` (pathlib's parts; a key of only '.' has none).
    """
    segments = relative_path.split("/")
    if "" in segments or "." in segments:
        return _junk_in(path_parts(relative_path) or ("",))
    name = segments[-1]
    if EXCLUDED_DIRS.isdisjoint(segments) and name not in EXCLUDED_FILES and not name.startswith("._"):
        return None
    return _junk_in(segments)


def _junk_in(parts: tuple[str, ...] | list[str]) -> str | None:
    *folders, name = parts
    for folder in folders:
        reason = junk_reason(folder, True)
        if reason:
            return reason
    return junk_reason(name, False)
