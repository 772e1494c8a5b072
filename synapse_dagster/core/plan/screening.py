"""Looking at each file before anything is sent: can it still be read as listed, would the SDK's content guard
refuse it, and is its content what its name says (:mod:`.content`).

``upload_files_bulk`` runs ``ensure_safe`` on every file before sending anything and raises on the first unsafe
one, so one bad file would abort a whole batch; an unreadable or vanished file would do the same. Looking at each
file up front turns all of these into a problem of its own unit, reported with the rule and byte offset (never
the matched bytes).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from synapse_sdk.utils.file.content_guard import ContentFinding, inspect_file

from synapse_dagster.core.plan.content import content_finding
from synapse_dagster.core.sources.files import SourceFile
from synapse_dagster.core.sources.location import parse_source


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


def look_at(file: SourceFile) -> FileLook:
    """Look at a file where it lies when it is local; a remote file is judged by its listing here (an empty one)
    and looked at once it is staged, just before upload (:func:`look_at_copy`)."""
    if not parse_source(file.uri).is_local:
        return FileLook(content="is empty (0 bytes)" if file.size == 0 else None)
    return _look(Path(file.uri), file, as_listed=True)


def look_at_copy(file: SourceFile, path: Path) -> FileLook:
    """Look at the staged copy (or the local file itself) of ``file`` just before it is uploaded."""
    return _look(path, file, as_listed=path == Path(file.uri))


def _look(path: Path, file: SourceFile, *, as_listed: bool) -> FileLook:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    except OSError as exc:
        return FileLook(unreadable=unreadable_reason(exc))
    try:
        with os.fdopen(fd, "rb") as handle:
            changed = _changed(os.fstat(handle.fileno()), file) if as_listed else None
            if changed:
                return FileLook(unreadable=changed)
            finding = content_finding(handle, file.extension, file.size)
        unsafe = unsafe_reason(str(path))
    except OSError as exc:
        return FileLook(unreadable=unreadable_reason(exc))
    return FileLook(unsafe=unsafe) if unsafe else FileLook(content=finding)


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
