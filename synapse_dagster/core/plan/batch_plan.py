"""The reviewed plan of a batch: every unit with its files, merged meta and every reason to hold it back.

This is the last stop before anything is sent: a unit that is incomplete, has invalid meta (its sheet row
included: a key on several rows, a formula with no value), an unsafe file or a file over the size limit is
*held back* with its reasons, and the rest of the batch goes on. The same plan is what a dry run shows a reviewer.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from synapse_dagster.core.organize.grouping import FileIssue, GroupingResult, PlannedUnit
from synapse_dagster.core.sources.files import SourceFile
from synapse_dagster.core.organize.detection import Detection
from synapse_dagster.core.meta.sheets import MetadataTable
from synapse_dagster.core.problems import Problem, ProblemKind
from synapse_dagster.core.organize.specs import CollectionSpecs
from synapse_dagster.core.meta.merge import build_unit_meta, render_dataset_key
from synapse_dagster.core.meta.sidecars import read_sidecar
from synapse_dagster.core.meta.sources import MetaRecipe, UnitFacts, unit_sources
from synapse_dagster.core.meta.validation import meta_errors


@dataclass
class UnitPlan:
    group_key: str
    dataset_key: str
    files: dict[str, SourceFile]
    meta: dict[str, Any]
    provenance: dict[str, str] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def is_valid(self) -> bool:
        return not self.problems

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files.values())


@dataclass
class BatchPlan:
    batch: str
    units: list[UnitPlan]
    file_issues: list[FileIssue]
    metadata_file: str | None = None
    sheet_rows_without_unit: list[str] = field(default_factory=list)
    sheet_duplicate_keys: list[str] = field(default_factory=list)  # their units are held back
    sheet_notes: list[str] = field(default_factory=list)  # e.g. the encoding a CSV sheet was read in
    units_without_sheet_row: list[str] = field(default_factory=list)
    detection: Detection | None = None

    @property
    def valid_units(self) -> list[UnitPlan]:
        return [u for u in self.units if u.is_valid]

    @property
    def invalid_units(self) -> list[UnitPlan]:
        return [u for u in self.units if not u.is_valid]

    @property
    def invalid_fraction(self) -> float:
        return len(self.invalid_units) / len(self.units) if self.units else 0.0

    def units_with(self, kinds: Sequence[str]) -> list[UnitPlan]:
        return [u for u in self.units if any(p.kind in kinds for p in u.problems)]

    def problem_counts(self) -> Counter[str]:
        return Counter(p.kind for u in self.units for p in u.problems)


def ordered_files(unit: PlannedUnit, specs: CollectionSpecs) -> list[SourceFile]:
    """The unit's files, primary spec first, then in the collection's spec order."""
    order = sorted(specs.specs, key=lambda s: not s.is_primary)
    return [unit.files[s.name] for s in order if s.name in unit.files]


@dataclass(frozen=True)
class PlanSettings:
    """How a pipeline plans its batches: the unit identity, where meta comes from, and the size limit."""

    pipeline: str
    dataset_key_template: str = "{batch}/{group_key}"
    recipe: MetaRecipe = field(default_factory=MetaRecipe)
    max_file_bytes: int | None = None


@dataclass(frozen=True)
class FileAccess:
    """What planning may read: sidecars (``read_bytes``) and, through ``screen``, data files."""

    read_bytes: Callable[[SourceFile], bytes] | None = None
    screen: Callable[[str], str | None] | None = None  # why a file is unsafe, or None


@dataclass
class _SheetMatches:
    sheet: MetadataTable | None
    matched: set[str] = field(default_factory=set)
    units_without_row: list[str] = field(default_factory=list)

    def row(self, group_key: str) -> tuple[dict[str, Any] | None, list[str]]:
        """The unit's sheet row (None when it has none or it is held back) and why the row holds the unit back."""
        if self.sheet is None:
            return None, []
        key = self.sheet.key_for(group_key)
        if key is None:
            self.units_without_row.append(group_key)
            return None, []
        self.matched.add(key)
        return self.sheet.rows.get(key), self.sheet.problems_for(group_key)

    def unmatched(self) -> list[str]:
        if self.sheet is None:
            return []
        return sorted((set(self.sheet.rows) | set(self.sheet.row_problems)) - self.matched)


def plan_batch(
    grouping: GroupingResult,
    specs: CollectionSpecs,
    batch: str,
    settings: PlanSettings,
    *,
    sheet: MetadataTable | None = None,
    access: FileAccess = FileAccess(),
) -> BatchPlan:
    """Attach meta to each grouped unit and collect every problem; reads only sidecars and (``screen``) data files."""
    rows = _SheetMatches(sheet)
    units = [_plan_unit(grouped, specs, batch, settings, rows, access) for grouped in grouping.units]
    _flag_duplicate_dataset_keys(units)
    return BatchPlan(
        batch=batch,
        units=units,
        file_issues=list(grouping.issues),
        metadata_file=sheet.path if sheet else None,
        sheet_rows_without_unit=rows.unmatched(),
        sheet_duplicate_keys=list(sheet.duplicate_keys) if sheet else [],
        sheet_notes=list(sheet.notes) if sheet else [],
        units_without_sheet_row=rows.units_without_row,
        detection=grouping.detection,
    )


def _plan_unit(
    grouped: PlannedUnit, specs: CollectionSpecs, batch: str, settings: PlanSettings, rows: _SheetMatches,
    access: FileAccess,
) -> UnitPlan:
    dataset_key = render_dataset_key(settings.dataset_key_template, pipeline=settings.pipeline, batch=batch,
                                     group_key=grouped.group_key)
    problems = list(grouped.problems)
    sidecars = _read_sidecars(grouped, access, problems)
    row, row_problems = rows.row(grouped.group_key)
    facts = UnitFacts(grouped.group_key, ordered_files(grouped, specs), row,
                      rows.sheet.name if rows.sheet else None, sidecars)
    built = build_unit_meta(unit_sources(settings.recipe, facts), dataset_key=dataset_key, schema=specs.meta_schema,
                            precedence=settings.recipe.precedence)
    problems += [Problem(ProblemKind.INVALID_META, p) for p in row_problems + built.problems]
    if not built.problems and not row_problems:  # without its sheet row the schema's complaints would mislead
        problems += [Problem(ProblemKind.INVALID_META, e) for e in meta_errors(built.meta, specs.meta_schema)]
    problems += _file_problems(grouped, settings.max_file_bytes, access.screen)
    return UnitPlan(group_key=grouped.group_key, dataset_key=dataset_key, files=dict(grouped.files), meta=built.meta,
                    provenance=built.provenance, problems=problems, notes=built.notes)


def _read_sidecars(grouped: PlannedUnit, access: FileAccess, problems: list[Problem]) -> list[tuple[str, dict[str, Any]]]:
    sidecars = []
    for f in grouped.sidecars:
        try:
            sidecars.append((f.relative_path, read_sidecar(f.name, (access.read_bytes or _read_local)(f))))
        except Exception as exc:  # JSON, YAML and decoding errors all mean "fix this file"
            problems.append(Problem(ProblemKind.INVALID_META,
                                    f"sidecar {f.relative_path} cannot be read ({type(exc).__name__}: {exc}); fix or remove it"))
    return sidecars


def _file_problems(grouped: PlannedUnit, max_file_bytes: int | None, screen: Callable[[str], str | None] | None) -> list[Problem]:
    problems = []
    for spec_name, file in sorted(grouped.files.items()):
        if max_file_bytes is not None and file.size > max_file_bytes:
            problems.append(Problem(ProblemKind.FILE_TOO_LARGE,
                                    f"file {file.relative_path} ({spec_name}) is {file.size / 2**20:.1f} MiB, over the "
                                    f"{max_file_bytes / 2**20:.0f} MiB limit (max_file_size_mb)"))
        if screen is not None and grouped.is_complete:
            reason = screen(file.uri)
            if reason:
                problems.append(Problem(ProblemKind.UNSAFE_FILE, f"file {file.relative_path} ({spec_name}) {reason}"))
    return problems


SIDECAR_MAX_BYTES = 2**20


def _read_local(file: SourceFile) -> bytes:
    if file.size > SIDECAR_MAX_BYTES:  # a sidecar is small; never slurp a mislabelled big file
        raise ValueError(f"it is {file.size:,} bytes, more than a sidecar may hold ({SIDECAR_MAX_BYTES:,})")
    with open(file.uri, "rb") as handle:
        return handle.read()


def _flag_duplicate_dataset_keys(units: list[UnitPlan]) -> None:
    seen: dict[str, list[UnitPlan]] = {}
    for unit in units:
        seen.setdefault(unit.dataset_key, []).append(unit)
    for key, same in seen.items():
        if len(same) > 1:
            for unit in same:
                unit.problems.append(Problem(
                    ProblemKind.DUPLICATE_KEY,
                    f"dataset_key '{key}' is shared by {len(same)} units; make dataset_key_template include {{group_key}}",
                ))
