"""What a terminal shows after a batch ran: one line per stage, the first held-back units and every failed check."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import dagster as dg

from synapse_dagster.cli.runs import output_of, step_failures
from synapse_dagster.core.deliver.creation import UnitStatus
from synapse_dagster.core.deliver.upload import FileStatus
from synapse_dagster.core.organize.grouping import IssueKind


def print_report(result: dg.ExecuteInProcessResult, pipeline: str, *, title: str, out=None) -> dict[str, int]:
    out = out or sys.stdout  # looked up now: tests swap sys.stdout

    inventory = output_of(result, pipeline, "source_inventory")
    grouping = output_of(result, pipeline, "grouped_data_units")
    plan = output_of(result, pipeline, "validated_meta")
    uploads = output_of(result, pipeline, "uploaded_files")
    created = output_of(result, pipeline, "created_units")
    print(f"\n== {title}: {'succeeded' if result.success else 'FAILED'}", file=out)
    figures: dict[str, int] = {}
    if inventory is not None:
        counts = inventory.counts()
        print(f"  files listed      : {counts.kept} ({counts.bytes:,} bytes; {counts.excluded} system files excluded"
              + (f"; {counts.refused} refused as unsafe" if counts.refused else "") + ")", file=out)
    if grouping is not None:
        pattern = f" ({grouping.detection.describe()})" if grouping.detection else ""
        print(f"  data units grouped: {len(grouping.units)}{pattern}", file=out)
        unmatched = (i for i in grouping.issues if i.kind in (IssueKind.REFUSED, IssueKind.UNMATCHED, IssueKind.AMBIGUOUS))
        _print_some(out, (f"not in a unit: {i.relative_path}: {i.reason}" for i in unmatched))
    if plan is not None:
        figures["valid"] = len(plan.valid_units)
        figures["invalid"] = len(plan.invalid_units)
        print(f"  valid units       : {len(plan.valid_units)}; held back: {len(plan.invalid_units)}", file=out)
        _print_some(out, (f"held back {u.group_key}: {'; '.join(u.problems)}" for u in plan.invalid_units))
    if uploads is not None:
        figures["uploaded"] = len(uploads.by_status(FileStatus.UPLOADED))
        figures["files_failed"] = len(uploads.by_status(FileStatus.FAILED))
        print(f"  files uploaded    : {figures['uploaded']} ({uploads.bytes_sent:,} bytes); "
              f"already there: {len(uploads.by_status(FileStatus.ALREADY_UPLOADED))}; failed: {figures['files_failed']}"
              + (f"; held back as read (unreadable, unsafe or bad content): {len(rejected)}"
                 if (rejected := uploads.by_status(FileStatus.REJECTED))
                 else ""), file=out)
        for error, paths in uploads.by_cause(FileStatus.FAILED, FileStatus.REJECTED).items():
            print(f"    not uploaded {_some(paths)}: {error}", file=out)
        for note, paths in uploads.notes().items():
            print(f"    uploaded with a warning {_some(paths)}: {note}", file=out)
    if created is not None:
        figures["created"] = len(created.by_status(UnitStatus.CREATED))
        figures["existing"] = len(created.by_status(UnitStatus.EXISTING))
        figures["units_failed"] = len(created.by_status(UnitStatus.FAILED))
        collided = created.by_status(UnitStatus.COLLIDED)
        figures["collisions"] = len(collided)
        print(f"  data units created: {figures['created']}; already existed: {figures['existing']}; "
              f"failed: {figures['units_failed']}" + (f"; key collisions: {len(collided)}" if collided else ""), file=out)
        for error, keys in _units_by_cause(created.by_status(UnitStatus.FAILED) + collided).items():
            print(f"    not created ({_some(keys)}): {error}", file=out)
        waiting = [key for key, _ in created.skipped]
        if waiting:
            print(f"    not created ({_some(waiting)}): a file of theirs did not upload (see above)", file=out)
        _print_some(out, (f"held back {key}: {'; '.join(why)}" for key, why in created.held_back))
        for key, versioned in created.versions.items():
            print(f"    {key} exists with other content: added as {versioned}", file=out)
    for check in result.get_asset_check_evaluations():
        if not check.passed:
            print(f"  check {check.check_name} ({check.severity.value}): {check.description}", file=out)
    for failure in step_failures(result):
        print(f"  step failed: {failure}", file=out)
    return figures


def _units_by_cause(outcomes: list) -> dict[str, list[str]]:
    """Units that were not created, grouped by why; a refused token is named once, by the check."""
    grouped: dict[str, list[str]] = {}
    for o in outcomes:
        why = "see the check below" if o.status_code in (401, 403) else (o.error or "no reason given")
        grouped.setdefault(why, []).append(o.dataset_key)
    return grouped


def _some(names: list[str]) -> str:
    return ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")


PRINTED_LINES = 50  # per kind of line: a million-file batch must not print a million lines


def _print_some(out: Any, lines: Iterator[str]) -> None:
    more = 0
    for n, line in enumerate(lines):
        if n < PRINTED_LINES:
            print(f"    {line}", file=out)
        else:
            more += 1
    if more:
        print(f"    … and {more} more", file=out)
