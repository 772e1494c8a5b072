"""Looking at each file as it is read for upload: can it still be read as listed, would the SDK's content guard
refuse it, and is its content what its name says (:mod:`.content`).

``upload_files_bulk`` runs ``ensure_safe`` on every file before sending anything and raises on the first unsafe
one, so one bad file would abort a whole batch; an unreadable or vanished file would do the same. Here each file is
read once, when its upload comes (:func:`read_for_upload`), and those same bytes are screened, hashed and sent;
a finding holds back its own unit, reported with the rule and byte offset (never the matched bytes). Planning
judges files by their listing alone (:func:`listing_look`), so it never opens a data file.
"""

from __future__ import annotations

import io
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from synapse_sdk.utils.file.content_guard import ContentFinding, inspect_bytes, inspect_file

from synapse_dagster.core.plan.content import content_finding
from synapse_dagster.core.sources.files import SourceFile


@dataclass(frozen=True)
class FileLook:
    """What looking at one file found; at most one of the three is reported, the first that applies."""

    unreadable: str | None = None  # gone, not readable, or changed since it was listed
    unsafe: str | None = None  # the SDK's content guard refuses it
    content: str | None = None  # empty, does not parse, or not the format its name says


def describe_findings(findings: list[ContentFinding]) -> str:
    parts = []
    for f in findings:
        where = f" at byte {f.offset}" if f.offset is not None else ""
        rule = getattr(f.rule, "value", f.rule)
        parts.append(f"{rule}({f.label}){where}")
    return ", ".join(parts)


def unsafe_reason(path: str) -> str | None:
    """Why the SDK would refuse to upload ``path``, or ``None`` when it is safe."""
    findings = inspect_file(path)
    if not findings:
        return None
    return f"rejected by the SDK content guard: {describe_findings(findings)}"


def listing_look(file: SourceFile) -> FileLook:
    """What planning can tell of a file without opening it: an empty file is a finding."""
    return FileLook(content="is empty (0 bytes)" if file.size == 0 else None)


IN_MEMORY_MAX = 8 * 2**20  # bigger files are screened, then streamed (read twice); one PUT thread holds at most this


@dataclass(frozen=True)
class FileRead:
    """One read of a file for upload: what looking at its bytes found, and the bytes (``None`` when the file is
    bigger than ``IN_MEMORY_MAX`` and is to be streamed from ``path``, or could not be read)."""

    look: FileLook
    data: bytes | None = None


def read_for_upload(file: SourceFile, path: Path) -> FileRead:
    """Read ``path`` (the local file itself, or the staged copy of a remote one) once, and screen those bytes.

    The file must still be the regular file that was listed (a staged copy: of the listed size), and must not
    change while it is read; a symlink swapped in since the listing is not followed.
    """
    as_listed = path == Path(file.uri)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    except OSError as exc:
        return FileRead(FileLook(unreadable=unreadable_reason(exc)))
    try:
        with os.fdopen(fd, "rb") as handle:
            before = os.fstat(handle.fileno())
            changed = _changed(before, file) if as_listed else _resized(before, file)
            if changed:
                return FileRead(FileLook(unreadable=changed))
            if before.st_size > IN_MEMORY_MAX:  # looked up now: a test lowers it
                return FileRead(_look_streamed(handle, path, file))
            data = handle.read(before.st_size + 1)
            if len(data) != before.st_size or _moved(before, os.fstat(handle.fileno())):
                return FileRead(FileLook(unreadable=CHANGED_WHILE_READ))
    except OSError as exc:
        return FileRead(FileLook(unreadable=unreadable_reason(exc)))
    return FileRead(_look_bytes(data, file), data)


CHANGED_WHILE_READ = "changed while it was read for upload (still being written?); re-run the batch once it is complete"


def _look_bytes(data: bytes, file: SourceFile) -> FileLook:
    findings = inspect_bytes(file.name, data)
    if findings:
        return FileLook(unsafe=f"rejected by the SDK content guard: {describe_findings(findings)}")
    return FileLook(content=content_finding(io.BytesIO(data), file.extension, len(data)))


def _look_streamed(handle: io.BufferedReader, path: Path, file: SourceFile) -> FileLook:
    finding = content_finding(handle, file.extension, file.size)
    unsafe = unsafe_reason(str(path))
    return FileLook(unsafe=unsafe) if unsafe else FileLook(content=finding)


def _resized(st: os.stat_result, file: SourceFile) -> str | None:
    if st.st_size != file.size:
        return f"was copied with {st.st_size:,} bytes, not the {file.size:,} listed; re-run the batch"
    return None


def _moved(before: os.stat_result, after: os.stat_result) -> bool:
    return (before.st_size, before.st_mtime_ns) != (after.st_size, after.st_mtime_ns)


def unreadable_reason(exc: OSError) -> str:
    if isinstance(exc, FileNotFoundError):
        return "no longer exists (deleted or moved since it was listed); re-run the batch once the drop is complete"
    if isinstance(exc, PermissionError):
        return "cannot be read: permission denied; fix its permissions for the user running the pipeline"
    return f"cannot be read ({exc.strerror or type(exc).__name__}); check the file and re-run the batch"


def still_as_listed(file: SourceFile) -> str | None:
    """Why the local ``file`` is no longer what was listed (and planned, and maybe uploaded), or ``None``."""
    try:
        return _changed(os.stat(file.uri, follow_symlinks=False), file)
    except OSError as exc:
        return unreadable_reason(exc)


def _changed(st: os.stat_result, file: SourceFile) -> str | None:
    if not stat.S_ISREG(st.st_mode):
        return "is no longer a regular file (replaced since it was listed); re-run the batch"
    if st.st_size != file.size:
        return (f"changed since it was listed ({file.size:,} → {st.st_size:,} bytes: still being written?); re-run "
                "the batch once it is complete")
    if st.st_mtime_ns != file.mtime_ns:
        return "was modified since it was listed; re-run the batch once it is complete"
    return None
