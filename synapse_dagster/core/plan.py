"""The reviewed plan of a batch: every unit with its files, merged meta and every reason to hold it back.

This is the last stop before anything is sent: a unit that is incomplete, has invalid meta, an unsafe
file or a file over the size limit is *held back* with its reasons, and the rest of the batch goes on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from synapse_dagster.core.grouping import FileIssue, GroupingResult
from synapse_dagster.core.inventory import SourceFile
from synapse_dagster.core.metadata import MetadataTable, build_unit_meta, render_dataset_key
from synapse_dagster.core.specs import CollectionSpecs
from synapse_dagster.core.validation import meta_errors


@dataclass
class UnitPlan:
    group_key: str
    dataset_key: str
    files: dict[str, SourceFile]
    meta: dict[str, Any]
    provenance: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

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
    sheet_duplicate_keys: list[str] = field(default_factory=list)
    units_without_sheet_row: list[str] = field(default_factory=list)

    @property
    def valid_units(self) -> list[UnitPlan]:
        return [u for u in self.units if u.is_valid]

    @property
    def invalid_units(self) -> list[UnitPlan]:
        return [u for u in self.units if not u.is_valid]

    @property
    def invalid_fraction(self) -> float:
        return len(self.invalid_units) / len(self.units) if self.units else 0.0


def plan_batch(
    grouping: GroupingResult,
    specs: CollectionSpecs,
    *,
    pipeline: str,
    batch: str,
    dataset_key_template: str,
    sheet: MetadataTable | None = None,
    directory_field: str | None = None,
    static_meta: Mapping[str, Any] | None = None,
    max_file_bytes: int | None = None,
    screen: Callable[[str], str | None] | None = None,
) -> BatchPlan:
    """Attach meta to each grouped unit and collect every problem; pure apart from ``screen`` (reads files)."""
    units: list[UnitPlan] = []
    matched_rows: set[str] = set()
    units_without_row: list[str] = []
    for grouped in grouping.units:
        dataset_key = render_dataset_key(dataset_key_template, pipeline=pipeline, batch=batch, group_key=grouped.group_key)
        row = sheet.row_for(grouped.group_key) if sheet else None
        if row is not None:
            matched_rows.add(grouped.group_key)
        built = build_unit_meta(
            group_key=grouped.group_key,
            dataset_key=dataset_key,
            sheet_row=row,
            sheet_name=sheet.path.rsplit("/", 1)[-1] if sheet else None,
            directory_field=directory_field,
            static=static_meta or {},
            schema=specs.meta_schema,
        )
        problems = list(grouped.problems) + built.problems
        if sheet is not None and row is None:
            units_without_row.append(grouped.group_key)
        if not built.problems:
            problems.extend(meta_errors(built.meta, specs.meta_schema))
        for spec_name, file in sorted(grouped.files.items()):
            if max_file_bytes is not None and file.size > max_file_bytes:
                problems.append(
                    f"file {file.relative_path} ({spec_name}) is {file.size / 2**20:.1f} MiB, over the "
                    f"{max_file_bytes / 2**20:.0f} MiB limit (max_file_size_mb)"
                )
            if screen is not None and grouped.is_complete:
                reason = screen(file.uri)
                if reason:
                    problems.append(f"file {file.relative_path} ({spec_name}) {reason}")
        units.append(
            UnitPlan(
                group_key=grouped.group_key,
                dataset_key=dataset_key,
                files=dict(grouped.files),
                meta=built.meta,
                provenance=built.provenance,
                problems=problems,
            )
        )
    _flag_duplicate_dataset_keys(units)
    return BatchPlan(
        batch=batch,
        units=units,
        file_issues=list(grouping.issues),
        metadata_file=sheet.path if sheet else None,
        sheet_rows_without_unit=sorted(set(sheet.rows) - matched_rows) if sheet else [],
        sheet_duplicate_keys=list(sheet.duplicate_keys) if sheet else [],
        units_without_sheet_row=units_without_row,
    )


def _flag_duplicate_dataset_keys(units: list[UnitPlan]) -> None:
    seen: dict[str, list[UnitPlan]] = {}
    for unit in units:
        seen.setdefault(unit.dataset_key, []).append(unit)
    for key, same in seen.items():
        if len(same) > 1:
            for unit in same:
                unit.problems.append(
                    f"dataset_key '{key}' is shared by {len(same)} units; make dataset_key_template include {{group_key}}"
                )
