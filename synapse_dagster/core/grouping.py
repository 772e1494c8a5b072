"""Grouping files into data units and mapping each file to a file specification.

The invariant users rely on: every listed file ends up in exactly one place, either in one unit
under one spec, or in the report with the reason it was left out. Nothing is silently picked or
dropped: two candidates for one spec in one unit are both reported and the unit is held back.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from synapse_dagster.core.inventory import SourceFile
from synapse_dagster.core.specs import CollectionSpecs
from synapse_dagster.pipeline_config import GroupBy


class IssueKind:
    EXCLUDED = "excluded"
    METADATA = "metadata"
    UNMATCHED = "unmatched"
    AMBIGUOUS = "ambiguous"


@dataclass(frozen=True, slots=True)
class FileIssue:
    """A file that is not part of any unit, and why."""

    relative_path: str
    kind: str
    reason: str
    group_key: str | None = None
    source_spec: str | None = None


@dataclass
class PlannedUnit:
    group_key: str
    files: dict[str, SourceFile] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def is_complete(self) -> bool:
        return not self.problems

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files.values())


@dataclass
class GroupingResult:
    units: list[PlannedUnit]
    issues: list[FileIssue]

    @property
    def complete_units(self) -> list[PlannedUnit]:
        return [u for u in self.units if u.is_complete]

    @property
    def incomplete_units(self) -> list[PlannedUnit]:
        return [u for u in self.units if not u.is_complete]

    def issues_of(self, kind: str) -> list[FileIssue]:
        return [i for i in self.issues if i.kind == kind]


def group_key_for(file: SourceFile, group_by: GroupBy) -> str | None:
    """The unit a file belongs to, or ``None`` when the layout gives it none."""
    if group_by is GroupBy.SUBDIRECTORY:
        parts = file.parts
        return parts[0] if len(parts) > 1 else None
    path = PurePosixPath(file.relative_path)
    parent = path.parent.as_posix()
    # Stems only join within one folder: 'a/x.png' and 'b/x.json' are different units.
    return path.stem if parent in ("", ".") else f"{parent}/{path.stem}"


def group_files(
    files: Iterable[SourceFile],
    specs: CollectionSpecs,
    group_by: GroupBy,
    *,
    reserved: Mapping[str, str] | None = None,
) -> GroupingResult:
    """Group a batch's files into units. ``reserved`` maps relative paths (e.g. the metadata sheet) to a reason."""
    reserved = reserved or {}
    issues: list[FileIssue] = []
    candidates: dict[str, dict[str, list[SourceFile]]] = {}

    for file in files:
        if file.excluded_reason:
            issues.append(FileIssue(file.relative_path, IssueKind.EXCLUDED, file.excluded_reason, source_spec=file.source_spec))
            continue
        if file.source_spec is None and file.relative_path in reserved:
            issues.append(FileIssue(file.relative_path, IssueKind.METADATA, reserved[file.relative_path]))
            continue
        key = group_key_for(file, group_by)
        if key is None:
            issues.append(
                FileIssue(
                    file.relative_path,
                    IssueKind.UNMATCHED,
                    "file sits at the top of the batch, not inside a unit folder; move it into a folder or use group_by: stem",
                    source_spec=file.source_spec,
                )
            )
            continue
        spec_name, kind, reason = _spec_for(file, specs)
        if spec_name is None:
            issues.append(FileIssue(file.relative_path, kind, reason, key, file.source_spec))
            continue
        candidates.setdefault(key, {}).setdefault(spec_name, []).append(file)

    units = []
    for key in sorted(candidates):
        unit = PlannedUnit(group_key=key)
        for spec_name, spec_files in candidates[key].items():
            if len(spec_files) == 1:
                unit.files[spec_name] = spec_files[0]
                continue
            names = ", ".join(f.relative_path for f in spec_files)
            unit.problems.append(f"{len(spec_files)} files for spec '{spec_name}' ({names}); keep one or add a rule")
            for f in spec_files:
                issues.append(
                    FileIssue(
                        f.relative_path,
                        IssueKind.AMBIGUOUS,
                        f"one of {len(spec_files)} candidates for spec '{spec_name}' in unit '{key}'",
                        key,
                        f.source_spec,
                    )
                )
        for spec in specs.required:
            if spec.name not in unit.files and not any(spec.name in p for p in unit.problems):
                unit.problems.append(f"missing required spec '{spec.describe()}'")
        units.append(unit)
    return GroupingResult(units=units, issues=issues)


def _spec_for(file: SourceFile, specs: CollectionSpecs) -> tuple[str | None, str, str]:
    """(spec name, issue kind, reason): a spec name when the file maps to exactly one spec."""
    if file.source_spec is not None:
        spec = specs.spec(file.source_spec)
        if spec is None:
            reason = f"source of spec '{file.source_spec}', which the collection does not define"
            return None, IssueKind.UNMATCHED, reason
        if spec.extensions and not spec.accepts(file.extension):
            reason = f"extension '{file.extension or '(none)'}' is not accepted by spec '{spec.describe()}'"
            return None, IssueKind.UNMATCHED, reason
        return spec.name, "", ""
    matches = specs.specs_for_extension(file.extension)
    if len(matches) == 1:
        return matches[0].name, "", ""
    if not matches:
        known = "; ".join(s.describe() for s in specs.specs)
        reason = f"extension '{file.extension or '(none)'}' matches no file specification ({known})"
        return None, IssueKind.UNMATCHED, reason
    names = ", ".join(s.name for s in matches)
    return None, IssueKind.AMBIGUOUS, f"extension '{file.extension}' fits several specs ({names}); add a rule to choose"
