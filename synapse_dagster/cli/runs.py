"""Running one batch of a pipeline from the command line, in full or as a dry run.

The CLI and the demo share this so what a person sees in a terminal matches what the UI shows. A dry run
materializes the graph up to ``validated_meta`` on a throwaway instance: Synapse is only read (specs, storage),
never written.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import dagster as dg

from synapse_dagster.cli.console import LOG_LEVEL_ENV, brief_console_logger
from synapse_dagster.cli.progress_bar import progress_bar
from synapse_dagster.config.loading import load_pipeline_file
from synapse_dagster.core.batches.keys import check_batch_key
from synapse_dagster.core.synapse.credentials import resolve_credentials
from synapse_dagster.config.models import BatchMode, PipelineConfig
from synapse_dagster.definitions import load_definitions
from synapse_dagster.defs.partitions import batches_partitions
from synapse_dagster.defs.pipeline import ASSET_NAMES, asset_key, ingest_job_name
from synapse_dagster.defs.run_workers import reap_dead_runs, run_worker_tags

DRY_RUN_ASSETS = ASSET_NAMES[:4]  # up to validated_meta: nothing reaches Synapse


def find_pipeline(pipeline_file: Path, name: str) -> PipelineConfig:
    pipelines, _ = load_pipeline_file(pipeline_file)
    config = next((p for p in pipelines.pipelines if p.name == name), None)
    if config is None:
        raise SystemExit(f"{pipeline_file} defines no pipeline '{name}' (it has {[p.name for p in pipelines.pipelines]})")
    return config


def run_batch(pipeline_file: Path, batch: str, *, pipeline: str, dry_run: bool = False) -> dg.ExecuteInProcessResult:
    """Register ``batch`` as a partition and run the pipeline's job (or its dry-run part) in process.

    The batch key and the Synapse settings are checked first, so a mistake in either is one line and exit 2, not
    a failed run. On a terminal, a progress bar (:mod:`.progress_bar`) shows the listing and the upload as they go.
    """
    config = find_pipeline(pipeline_file, pipeline)
    check_batch_key(batch)
    resolve_credentials()
    defs = load_definitions(pipeline_file)
    job = defs.resolve_job_def(ingest_job_name(config))
    level = os.environ.get(LOG_LEVEL_ENV, "WARNING").upper()
    if level != "DEBUG":  # Dagster's console logger prints every failure with its stack; the CLI prints one line
        job = job.with_logger_defs({"console": brief_console_logger})
    quiet = {"loggers": {"console": {"config": {"log_level": level}}}}
    partitions = batches_partitions(pipeline)
    if dry_run:
        with dg.DagsterInstance.ephemeral() as instance, progress_bar():
            instance.add_dynamic_partitions(partitions.name, [batch])
            return job.execute_in_process(
                instance=instance, partition_key=batch, raise_on_error=False, run_config=quiet,
                asset_selection=[asset_key(config, name) for name in DRY_RUN_ASSETS],
            )
    instance = dg.DagsterInstance.get()
    reap_dead_runs(instance, log=lambda message: print(message, file=sys.stderr))
    register_batch(instance, partitions.name, batch)
    with progress_bar():
        return job.execute_in_process(instance=instance, partition_key=batch, raise_on_error=False, run_config=quiet,
                                      tags=run_worker_tags())


def register_batch(instance: dg.DagsterInstance, partitions: str, batch: str) -> None:
    """Add the partition unless it exists; two launches of one batch may race to add it, and both must go on."""
    if instance.has_dynamic_partition(partitions, batch):
        return
    try:
        instance.add_dynamic_partitions(partitions, [batch])
    except Exception:
        if not instance.has_dynamic_partition(partitions, batch):
            raise


def output_of(result: dg.ExecuteInProcessResult, pipeline: str, name: str) -> Any:
    try:
        return result.asset_value(dg.AssetKey([pipeline, name]))
    except Exception:  # the step did not run (blocked, failed, or outside the selection)
        return None


def step_failures(result: dg.ExecuteInProcessResult) -> list[str]:
    return [f"{e.step_key}: {failure_message(e.event_specific_data.error)}"
            for e in result.all_events if e.event_type_value == "STEP_FAILURE"]


def failure_message(error: Any) -> str:
    """The cause under Dagster's wrappers, as its own sentence: a ``dg.Failure``'s message, or ``Class: message``."""
    while getattr(error, "cause", None) is not None and error.cls_name in _WRAPPERS:
        error = error.cause
    text = (error.message or "").strip().split("\n\n")[0]
    if error.cls_name == "DagsterAssetCheckFailedError":  # 'N blocking asset check failed …:\n<asset>: <check>'
        checks = [line.rsplit(": ", 1)[-1] for line in text.splitlines()[1:] if line.strip()]
        return f"its blocking check {', '.join(checks)} failed (above)"
    prefix = f"{error.cls_name}: "
    for known in (f"dagster._core.definitions.events.{prefix}", prefix):
        if text.startswith(known) and error.cls_name in ("Failure", *_USER_ERRORS):
            return text[len(known):]
    return text


_WRAPPERS = {"DagsterExecutionStepExecutionError", "DagsterUserCodeExecutionError", "DagsterExecutionInterruptedError"}
_USER_ERRORS = ("SynapseConfigError", "BatchKeyError", "SourceError", "PipelineConfigError", "LedgerUrlError")


def ready_batches(config: PipelineConfig, base_dir: Path) -> list[tuple[str, bool, str]]:
    """Every batch folder of a folders-mode pipeline with (name, ready, why not)."""
    from synapse_dagster.core.batches.folders import FolderBatches, list_existing_batches
    from synapse_dagster.core.sources.roots import resolve_roots
    from synapse_dagster.defs.resources import SynapseResource

    if config.batches.mode is not BatchMode.FOLDERS:
        return []
    synapse = SynapseResource()
    roots = resolve_roots(config.source_settings(), owner=config.label, base_dir=base_dir,
                          storage=lambda: synapse.storage(config.storage), storage_id=config.storage)
    out = []
    with FolderBatches(roots, ready_marker=config.batches.ready_marker,
                       settle_seconds=config.batches.settle_seconds) as watcher:
        for name in list_existing_batches(roots):
            ok, why = watcher.readiness(name)
            out.append((name, ok, why))
    return out


def dead_letter_rows(pipeline_file: Path, pipeline: str, batch: str | None) -> list[tuple]:
    """The ledger's dead letters of ``pipeline`` on the Synapse the environment points at."""
    from synapse_dagster.core.deliver.ledger import Ledger
    from synapse_dagster.core.synapse.credentials import resolve_credentials
    from synapse_dagster.definitions import LEDGER_URL_ENV, default_state_dir
    from synapse_dagster.defs.resources import ledger_file

    config = find_pipeline(pipeline_file, pipeline)
    target = resolve_credentials().target
    with Ledger(os.environ.get(LEDGER_URL_ENV) or ledger_file(default_state_dir(pipeline_file))) as ledger:
        return ledger.dead_letters(target, config.data_collection, batch)
