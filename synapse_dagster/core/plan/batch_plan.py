"""The reviewed plan of a batch: every unit with its files, merged meta and every reason to hold it back.

This is the last stop before anything is sent: a unit that is incomplete, has invalid meta (its sheet row
included: a key on several rows, a formula with no value), an unsafe file or a file over the size limit is
*held back* with its reasons, and the rest of the batch goes on. The same plan is what a dry run shows a reviewer.
"""

from __future__ import annotations

import pickle
import string
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from synapse_dagster.core.organize.grouping import FileIssue, GroupingResult, PlannedUnit
from synapse_dagster.core.sources.files import SourceFile, spec_files_from_rows, spec_files_rows
from synapse_dagster.core.tables.row_table import Codec, RowTable, Spill, column_sum, matching
from synapse_dagster.core.organize.detection import Detection
from synapse_dagster.core.meta.sheets import MetadataTable
from synapse_dagster.core.problems import Problem, ProblemKind
from synapse_dagster.core.organize.specs import CollectionSpecs
from synapse_dagster.core.memo import BoundedMemo
from synapse_dagster.core.meta.coercion import FieldTypes
from synapse_dagster.core.meta.merge import build_unit_meta, render_dataset_key
from synapse_dagster.core.meta.sidecars import read_sidecar
from synapse_dagster.core.meta.sources import MetaRecipe, UnitFacts, unit_sources, used_sources
from synapse_dagster.core.meta.validation import compiled
from synapse_dagster.core.plan.content import WARN, ContentPolicy
from synapse_dagster.core.plan.screening import FileLook, listing_look


@dataclass(slots=True)
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
        return sum([f.size for f in self.files.values()])


def _plan_row(u: UnitPlan) -> tuple:
    problems = u.problems
    kinds = f",{','.join([p.kind for p in problems])}," if problems else ""
    payload = (spec_files_rows(u.files), u.meta, u.provenance, [p.as_row() for p in problems], u.notes)
    return (u.group_key, u.dataset_key, 0 if problems else 1, kinds, sum([f.size for f in u.files.values()]),
            pickle.dumps(payload, pickle.HIGHEST_PROTOCOL))


def _plan_from_row(row: tuple) -> UnitPlan:
    files, meta, provenance, problems, notes = pickle.loads(row[5])
    return UnitPlan(row[0], row[1], spec_files_from_rows(files), meta, provenance,
                    [Problem(*p) for p in problems], list(notes))


# kinds: ",kind,kind," (one entry per problem), so a kind is found with LIKE '%,kind,%'
UNIT_PLAN_CODEC = Codec("unit_plan", ("group_key", "dataset_key", "valid", "kinds", "total_bytes", "payload"),
                        _plan_row, _plan_from_row)


@dataclass
class BatchPlan:
    batch: str
    units: Sequence[UnitPlan]  # a RowTable when planned here; a list is fine for small hand-made plans
    file_issues: Sequence[FileIssue]
    metadata_file: str | None = None
    sheet_rows_without_unit: list[str] = field(default_factory=list)
    sheet_duplicate_keys: list[str] = field(default_factory=list)  # their units are held back
    sheet_notes: list[str] = field(default_factory=list)  # e.g. the encoding a CSV sheet was read in
    units_without_sheet_row: list[str] = field(default_factory=list)
    detection: Detection | None = None
    required_specs: frozenset[str] = frozenset()
    newest_mtime_ns: int = 0  # the batch's newest file, from the inventory: the delivery's lag is measured from it

    @property
    def valid_units(self) -> Sequence[UnitPlan]:
        return matching(self.units, lambda u: u.is_valid, "valid = 1")

    @property
    def invalid_units(self) -> Sequence[UnitPlan]:
        return matching(self.units, lambda u: not u.is_valid, "valid = 0")

    @property
    def bytes_to_send(self) -> int:
        return column_sum(self.valid_units, "total_bytes", lambda u: u.total_bytes)

    @property
    def invalid_fraction(self) -> float:
        return len(self.invalid_units) / len(self.units) if self.units else 0.0

    def units_with(self, kinds: Sequence[str]) -> Sequence[UnitPlan]:
        return matching(self.units, lambda u: any(p.kind in kinds for p in u.problems),
                        " or ".join(["kinds like ?"] * len(kinds)) or "0", tuple(f"%,{k},%" for k in kinds))

    def problem_counts(self) -> Counter[str]:
        if isinstance(self.units, RowTable):
            return Counter(k for kinds in self.units.values("kinds") for k in kinds.split(",") if k)
        return Counter(p.kind for u in self.units for p in u.problems)


def spec_order(specs: CollectionSpecs) -> tuple[str, ...]:
    """Primary spec first, then the collection's order: the order of a unit's files."""
    return tuple(s.name for s in sorted(specs.specs, key=lambda s: not s.is_primary))


@dataclass(frozen=True)
class PlanSettings:
    """How a pipeline plans its batches: the unit identity, where meta comes from, the size limit, and what a file
    whose content is not what its name says does to its unit."""

    pipeline: str
    dataset_key_template: str = "{batch}/{group_key}"
    recipe: MetaRecipe = field(default_factory=MetaRecipe)
    max_file_bytes: int | None = None
    content_policy: ContentPolicy = ContentPolicy()


@dataclass(frozen=True)
class FileAccess:
    """What planning may read: sidecars (``read_bytes``) and, through ``look``, data files."""

    read_bytes: Callable[[SourceFile], bytes] | None = None
    look: Callable[[SourceFile], FileLook] | None = None  # None: by the listing alone (listing_look)


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
    spill: Spill | None = None,
) -> BatchPlan:
    """Attach meta to each grouped unit and collect every problem; reads only sidecars and (``look``) data files.
    Units stream from the grouping's table to the plan's (in ``spill``), one at a time."""
    spill = spill or Spill()
    rows = _SheetMatches(sheet)
    planner = _Planner(specs, batch, settings, rows, access)
    units = spill.table("plan", UNIT_PLAN_CODEC, map(planner.plan, grouping.units))
    if not (isinstance(grouping.units, RowTable) and _shows_group_key(settings.dataset_key_template)):
        units = _flag_duplicate_dataset_keys(units, spill)
    return BatchPlan(
        batch=batch,
        units=units,
        file_issues=grouping.issues,
        metadata_file=sheet.path if sheet else None,
        sheet_rows_without_unit=rows.unmatched(),
        sheet_duplicate_keys=list(sheet.duplicate_keys) if sheet else [],
        sheet_notes=list(sheet.notes) if sheet else [],
        units_without_sheet_row=rows.units_without_row,
        detection=grouping.detection,
        required_specs=frozenset(s.name for s in specs.required),
    )


class _Planner:
    """What planning a batch's units shares: the settings, the spec order, the compiled schema, the sheet."""

    def __init__(self, specs: CollectionSpecs, batch: str, settings: PlanSettings, rows: _SheetMatches,
                 access: FileAccess) -> None:
        self.specs, self.batch, self.settings, self.rows, self.access = specs, batch, settings, rows, access
        self.order = spec_order(specs)
        self.validator = compiled(specs.meta_schema)
        self.types = FieldTypes(specs.meta_schema)
        self.sources = used_sources(settings.recipe)
        self.dataset_key = partial(render_dataset_key, settings.dataset_key_template, pipeline=settings.pipeline,
                                   batch=batch)
        # the same few complaints ('age' is missing) recur across units, and a Problem is immutable
        self.meta_problem = BoundedMemo(partial(Problem, ProblemKind.INVALID_META), 1024)
        self.files = _FileProblems(specs, settings, access.look)

    def plan(self, grouped: PlannedUnit) -> UnitPlan:
        settings, rows = self.settings, self.rows
        dataset_key = self.dataset_key(group_key=grouped.group_key)
        problems = list(grouped.problems)
        sidecars = _read_sidecars(grouped, self.access, problems) if grouped.sidecars else []
        row, row_problems = rows.row(grouped.group_key) if rows.sheet is not None else (None, [])
        facts = UnitFacts(grouped.group_key, [grouped.files[s] for s in self.order if s in grouped.files], row,
                          rows.sheet.name if rows.sheet else None, sidecars)
        built = build_unit_meta(unit_sources(settings.recipe, facts, self.sources), dataset_key=dataset_key,
                                schema=self.specs.meta_schema, precedence=settings.recipe.precedence, types=self.types)
        problems += [Problem(ProblemKind.INVALID_META, p) for p in row_problems + built.problems]
        if not built.problems and not row_problems:  # without its sheet row the schema's complaints would mislead
            problems += map(self.meta_problem, self.validator.errors(built.meta))
        file_problems, notes = self.files.of(grouped)
        return UnitPlan(grouped.group_key, dataset_key, dict(grouped.files), built.meta, built.provenance,
                        problems + file_problems, built.notes + notes)


def _read_sidecars(grouped: PlannedUnit, access: FileAccess, problems: list[Problem]) -> list[tuple[str, dict[str, Any]]]:
    sidecars = []
    for f in grouped.sidecars:
        try:
            sidecars.append((f.relative_path, read_sidecar(f.name, (access.read_bytes or _read_local)(f))))
        except Exception as exc:  # JSON, YAML and decoding errors all mean "fix this file"
            problems.append(Problem(ProblemKind.INVALID_META,
                                    f"sidecar {f.relative_path} cannot be read ({type(exc).__name__}: {exc}); fix or remove it"))
    return sidecars


class _FileProblems:
    """A unit's files against the size limit and what looking at them found; warnings become notes."""

    def __init__(self, specs: CollectionSpecs, settings: PlanSettings, look: Callable[[SourceFile], FileLook] | None):
        self.required = {s.name for s in specs.required}
        self.settings, self.look = settings, look

    def of(self, grouped: PlannedUnit) -> tuple[list[Problem], list[str]]:
        """(problems, notes) of the unit's files."""
        limit = self.settings.max_file_bytes
        if self.look is None and _sizes_fine(grouped.files, limit):
            return [], []  # nothing to say from the listing: the common case, kept cheap
        problems: list[Problem] = []
        notes: list[str] = []
        for spec_name, file in sorted(grouped.files.items()):
            what = f"file {file.relative_path} ({spec_name})"
            if limit is not None and file.size > limit:
                problems.append(Problem(ProblemKind.FILE_TOO_LARGE, f"{what} is {file.size / 2**20:.1f} MiB, over the "
                                        f"{limit / 2**20:.0f} MiB limit (max_file_size_mb)"))
            if grouped.is_complete:
                problems += self._looked(what, spec_name, (self.look or listing_look)(file), notes)
        return problems, notes

    def _looked(self, what: str, spec_name: str, look: FileLook, notes: list[str]) -> list[Problem]:
        if look.unreadable:
            return [Problem(ProblemKind.UNREADABLE_FILE, f"{what} {look.unreadable}")]
        if look.unsafe:
            return [Problem(ProblemKind.UNSAFE_FILE, f"{what} {look.unsafe}")]
        if not look.content:
            return []
        which = "required" if spec_name in self.required else "optional"
        if self.settings.content_policy.for_spec(spec_name in self.required) == WARN:
            notes.append(f"{what} {look.content}; uploaded anyway (content_policy.{which}: warn)")
            return []
        return [Problem(ProblemKind.BAD_CONTENT, f"{what} {look.content}; fix or replace it (or set "
                        f"content_policy.{which}: warn to upload it anyway)")]


def _sizes_fine(files: dict[str, SourceFile], limit: int | None) -> bool:
    for file in files.values():
        if not 0 < file.size or (limit is not None and file.size > limit):
            return False
    return True


SIDECAR_MAX_BYTES = 2**20


def _read_local(file: SourceFile) -> bytes:
    if file.size > SIDECAR_MAX_BYTES:  # a sidecar is small; never slurp a mislabelled big file
        raise ValueError(f"it is {file.size:,} bytes, more than a sidecar may hold ({SIDECAR_MAX_BYTES:,})")
    with open(file.uri, "rb") as handle:
        return handle.read()


def _shows_group_key(template: str) -> bool:
    """Whether ``template`` writes ``{group_key}`` as it is: then the dataset keys of a grouping's units (one unit
    per key) are as distinct as their keys, and a million-unit plan need not be sorted to find shared ones."""
    try:
        fields = list(string.Formatter().parse(template))
    except ValueError:
        return False
    return any(name == "group_key" and not spec and conversion is None for _, name, spec, conversion in fields)


def _flag_duplicate_dataset_keys(units: RowTable[UnitPlan], spill: Spill) -> RowTable[UnitPlan]:
    """Units that share a dataset_key are all held back. SQLite finds the keys; the (rare) plan that has some is
    written again with the problem added."""
    shared = units.repeated("dataset_key")
    if not shared:
        return units

    def flagged(unit: UnitPlan) -> UnitPlan:
        if unit.dataset_key in shared:
            unit.problems.append(Problem(
                ProblemKind.DUPLICATE_KEY, f"dataset_key '{unit.dataset_key}' is shared by {shared[unit.dataset_key]} "
                "units; make dataset_key_template show {group_key} whole (no format spec)"))
        return unit

    again = spill.table("plan", UNIT_PLAN_CODEC, (flagged(u) for u in units))
    units.drop()
    return again
