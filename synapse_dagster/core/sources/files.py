"""What a listing yields, wherever the files live: :class:`SourceFile` records, NAS and desktop junk marked
rather than dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

# Files and folders that NAS boxes, desktops and VCS tools leave behind. They are never data, so they
# are reported as excluded instead of surfacing as "unmatched" noise.
EXCLUDED_DIRS = frozenset(
    {"@eaDir", ".@__thumb", "@Recycle", "#recycle", "#snapshot", ".synology", "__pycache__", ".git", ".svn",
     ".Trashes", ".Spotlight-V100", ".fseventsd", "$RECYCLE.BIN", "System Volume Information"}
)
EXCLUDED_FILES = frozenset({".DS_Store", "Thumbs.db", "desktop.ini", ".gitkeep", "Icon\r", ".localized"})


class SourceError(ValueError):
    """A source path that cannot be listed; the message names the path and what to do."""


@dataclass(frozen=True, slots=True)
class SourceFile:
    """One file of a batch. ``relative_path`` is POSIX and relative to the batch root of its source."""

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

    @property
    def name(self) -> str:
        return PurePosixPath(self.relative_path).name

    @property
    def extension(self) -> str:
        return PurePosixPath(self.relative_path).suffix.lower()

    @property
    def stem(self) -> str:
        return PurePosixPath(self.relative_path).stem

    @property
    def parts(self) -> tuple[str, ...]:
        return PurePosixPath(self.relative_path).parts

    @property
    def fingerprint(self) -> str:
        """Identity of this exact content version, cheap to compute: a changed file gets a new one.

        An object store's content tag beats the mtime: it changes exactly when the bytes do.
        """
        return f"{self.uri}|{self.size}|{self.etag or self.mtime_ns}"


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

    A listing asks this once per object, so a plain name (no empty or '.' segment, where ``split`` and
    ``PurePosixPath.parts`` agree) is split with ``str.split`` and, unless some segment is a junk name, answered
    with one set test; anything else goes through ``PurePosixPath`` exactly as before.
    """
    segments = relative_path.split("/")
    if "" in segments or "." in segments:
        return _junk_in(PurePosixPath(relative_path).parts)
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
