"""Pre-screening files with the SDK's own content guard.

``upload_files_bulk`` runs ``ensure_safe`` on every file before sending anything and raises on the
first unsafe one, so a single bad file would abort a whole batch. Screening each file up front turns
that into a per-unit problem, reported with the rule and byte offset (never the matched bytes).
"""

from __future__ import annotations

from synapse_sdk.utils.file.content_guard import ContentFinding, inspect_file

from synapse_dagster.core.sources.location import parse_source


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


def local_unsafe_reason(uri: str) -> str | None:
    """Screen a file where it lies when it is local; remote files are screened once staged, just before upload."""
    return unsafe_reason(uri) if parse_source(uri).is_local else None
