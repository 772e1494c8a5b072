"""Running one batch of a pipeline from the command line, in full or as a dry run, and reporting on it.

The CLI and the demo share this so what a person sees in a terminal matches what the UI shows.
A dry run materializes the graph up to ``validated_meta`` on a throwaway instance: Synapse is only
read (specs, storage), never written.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import dagster as dg

from synapse_dagster.assets import ASSET_NAMES, asset_key
from synapse_dagster.definitions import load_definitions
from synapse_dagster.jobs import ingest_job_name
from synapse_dagster.partitions import batches_partitions
from synapse_dagster.pipeline_config import PipelineConfig, load_pipeline_file

DRY_RUN_ASSETS = ASSET_NAMES[:4]  # up to validated_meta: nothing reaches Synapse


def _pipeline(pipeline_file: Path, name: str) -> PipelineConfig:
    pipelines, _ = load_pipeline_file(pipeline_file)
    config = next((p for p in pipelines.pipelines if p.name == name), None)
    if config is None:
        raise SystemExit(f"{pipeline_file} defines no pipeline '{name}' (it has {[p.name for p in pipelines.pipelines]})")
    return config


def run_batch(pipeline_file: Path, batch: str, *, pipeline: str, dry_run: bool = False) -> dg.ExecuteInProcessResult:
    """Register ``batch`` as a partition and run the pipeline's job (or its dry-run part) in process."""
    config = _pipeline(pipeline_file, pipeline)
    defs = load_definitions(pipeline_file)
    job = defs.resolve_job_def(ingest_job_name(config))
    quiet = {"loggers": {"console": {"config": {"log_level": os.environ.get("SYNAPSE_DAGSTER_LOG_LEVEL", "WARNING")}}}}
    partitions = batches_partitions(pipeline)
    if dry_run:
        with dg.DagsterInstance.ephemeral() as instance:
            instance.add_dynamic_partitions(partitions.name, [batch])
            return job.execute_in_process(
                instance=instance, partition_key=batch, raise_on_error=False, run_config=quiet,
                asset_selection=[asset_key(config, name) for name in DRY_RUN_ASSETS],
            )
    instance = dg.DagsterInstance.get()
    if not instance.has_dynamic_partition(partitions.name, batch):
        instance.add_dynamic_partitions(partitions.name, [batch])
    return job.execute_in_process(instance=instance, partition_key=batch, raise_on_error=False, run_config=quiet)


def output_of(result: dg.ExecuteInProcessResult, pipeline: str, name: str) -> Any:
    try:
        return result.output_for_node(f"{pipeline}__{name}")
    except Exception:  # the step did not run (blocked, failed, or outside the selection)
        return None


def step_failures(result: dg.ExecuteInProcessResult) -> list[str]:
    return [f"{e.step_key}: {e.event_specific_data.error.message.strip()}"
            for e in result.all_events if e.event_type_value == "STEP_FAILURE"]


def print_report(result: dg.ExecuteInProcessResult, pipeline: str, *, title: str, out=None) -> dict[str, int]:
    from synapse_dagster.core.deliver.creation import UnitStatus
    from synapse_dagster.core.deliver.upload import FileStatus

    out = out or sys.stdout  # looked up now: tests swap sys.stdout

    inventory = output_of(result, pipeline, "source_inventory")
    grouping = output_of(result, pipeline, "grouped_data_units")
    plan = output_of(result, pipeline, "validated_meta")
    uploads = output_of(result, pipeline, "uploaded_files")
    created = output_of(result, pipeline, "created_units")
    print(f"\n== {title}: {'succeeded' if result.success else 'FAILED'}", file=out)
    figures: dict[str, int] = {}
    if inventory is not None:
        kept = [f for f in inventory.files if not f.excluded_reason]
        print(f"  files listed      : {len(kept)} ({sum(f.size for f in kept):,} bytes; "
              f"{len(inventory.files) - len(kept)} system files excluded)", file=out)
    if grouping is not None:
        unmatched = [i for i in grouping.issues if i.kind in ("unmatched", "ambiguous")]
        pattern = f" ({grouping.detection.describe()})" if grouping.detection else ""
        print(f"  data units grouped: {len(grouping.units)}{pattern}", file=out)
        for issue in unmatched:
            print(f"    not in a unit: {issue.relative_path}: {issue.reason}", file=out)
    if plan is not None:
        figures["valid"] = len(plan.valid_units)
        figures["invalid"] = len(plan.invalid_units)
        print(f"  valid units       : {len(plan.valid_units)}; held back: {len(plan.invalid_units)}", file=out)
        for unit in plan.invalid_units:
            print(f"    held back {unit.group_key}: {'; '.join(unit.problems)}", file=out)
    if uploads is not None:
        figures["uploaded"] = len(uploads.by_status(FileStatus.UPLOADED))
        figures["files_failed"] = len(uploads.by_status(FileStatus.FAILED))
        print(f"  files uploaded    : {figures['uploaded']} ({uploads.bytes_sent:,} bytes); "
              f"already there: {len(uploads.by_status(FileStatus.ALREADY_UPLOADED))}; failed: {figures['files_failed']}", file=out)
    if created is not None:
        figures["created"] = len(created.by_status(UnitStatus.CREATED))
        figures["existing"] = len(created.by_status(UnitStatus.EXISTING))
        figures["units_failed"] = len(created.by_status(UnitStatus.FAILED))
        print(f"  data units created: {figures['created']}; already existed: {figures['existing']}; "
              f"failed: {figures['units_failed']}", file=out)
    for check in result.get_asset_check_evaluations():
        if not check.passed:
            print(f"  check {check.check_name} ({check.severity.value}): {check.description}", file=out)
    for failure in step_failures(result):
        print(f"  step failed: {failure}", file=out)
    return figures
