"""One sensor per pipeline: new batch folders (folders mode) or closed arrival windows (windows mode).

A tick registers the new, ready batches as dynamic partitions and requests their runs in the same
``SensorResult``; run keys make a repeated tick harmless. The finding itself is the functional core
(``core.batches``); this module only wires it to Dagster.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time

import dagster as dg

from synapse_dagster.config.models import BatchMode, PipelineConfig
from synapse_dagster.core.batches.discovery import DiscoveryCursor, DiscoveryLimits, discover
from synapse_dagster.core.batches.folders import FolderBatches
from synapse_dagster.core.batches.windows import WindowCursor, WindowSpec, scan_windows
from synapse_dagster.core.redaction import redact
from synapse_dagster.core.sources.files import SourceError
from synapse_dagster.core.sources.listing import list_files
from synapse_dagster.defs.partitions import batches_partitions
from synapse_dagster.defs.run_workers import reap_dead_runs
from synapse_dagster.defs.resources import SourcesResource, SynapseResource

FIRST_PASS_BATCHES_PER_TICK = 1000


def now() -> float:
    """The sensor's clock (one place, so tests can move time forward)."""
    return time.time()  # registering without runs is cheap: take the backlog in few ticks


def sensor_name(pipeline: PipelineConfig) -> str:
    return f"{pipeline.name}_new_batches"


def run_key(pipeline: PipelineConfig, batch: str) -> str:
    return f"{pipeline.name}/{batch}"


def discovery_limits(pipeline: PipelineConfig, *, first_pass_register: bool) -> DiscoveryLimits:
    s = pipeline.sensor
    limits = DiscoveryLimits(
        max_batches_per_tick=s.max_batches_per_tick,
        max_names_per_tick=s.max_names_per_tick,
        max_readiness_checks_per_tick=max(50, 5 * s.max_batches_per_tick),
        lookback=s.lookback,
        full_rescan_every_ticks=s.full_rescan_every_ticks,
        seconds_per_tick=30.0,  # well inside Dagster's 60 s tick timeout
    )
    if first_pass_register:
        limits = dataclasses.replace(limits, max_batches_per_tick=FIRST_PASS_BATCHES_PER_TICK,
                                     max_readiness_checks_per_tick=FIRST_PASS_BATCHES_PER_TICK)
    return limits


def build_batch_sensor(pipeline: PipelineConfig, job: dg.UnresolvedAssetJobDefinition) -> dg.SensorDefinition | None:
    if pipeline.batches.mode is BatchMode.KEYS or not pipeline.sensor.enabled:
        return None
    if pipeline.batches.mode is BatchMode.WINDOWS:
        return _window_sensor(pipeline, job)
    return _folder_sensor(pipeline, job)


def _folder_sensor(pipeline: PipelineConfig, job: dg.UnresolvedAssetJobDefinition) -> dg.SensorDefinition:
    partitions = batches_partitions(pipeline.name)
    readiness = (f"its {pipeline.batches.ready_marker} marker exists" if pipeline.batches.ready_marker else
                 f"its newest file is {pipeline.batches.settle_seconds}s old" if pipeline.batches.settle_seconds else
                 "it appears")

    @_batch_sensor(
        pipeline, job,
        f"Watches the source of pipeline '{pipeline.name}' for new batch folders; a batch is taken when {readiness}. "
        f"Batches found on the first pass are {'registered for a backfill' if pipeline.sensor.on_first_pass == 'register' else 'run'}.",
    )
    def new_batches(context: dg.SensorEvaluationContext, synapse: SynapseResource,
                    sources: SourcesResource) -> dg.SensorResult:
        reap_dead_runs(context.instance, context.log.warning)
        cursor = DiscoveryCursor.from_json(context.cursor)
        register_only = not cursor.first_pass_done and pipeline.sensor.on_first_pass == "register"
        try:
            roots = sources.roots(pipeline, synapse)
            with FolderBatches(roots, ready_marker=pipeline.batches.ready_marker,
                               settle_seconds=pipeline.batches.settle_seconds) as watcher:
                outcome = discover(
                    watcher,
                    lambda key: context.instance.has_dynamic_partition(partitions.name, key),
                    cursor,
                    discovery_limits(pipeline, first_pass_register=register_only),
                )
        except SourceError as exc:
            raise SourceError(redact(str(exc))) from None
        for name, why in sorted(outcome.unusable.items())[:20]:
            context.log.warning(f"folder '{name}' cannot be a batch: {why}")
        if outcome.waiting:
            context.log.info("waiting: " + "; ".join(f"{n} ({why})" for n, why in list(outcome.waiting.items())[:20]))
        context.log.info(outcome.summary() + (" (first pass: registered for backfill, no runs)" if register_only else ""))
        requests = [] if register_only else [
            dg.RunRequest(partition_key=batch, run_key=run_key(pipeline, batch), tags={"synapse/batch": batch})
            for batch in outcome.taken
        ]
        return dg.SensorResult(
            run_requests=requests,
            dynamic_partitions_requests=[partitions.build_add_request(outcome.taken)] if outcome.taken else [],
            cursor=outcome.cursor.to_json(),
            skip_reason=None if requests else outcome.summary(),
        )

    return new_batches


def _batch_sensor(pipeline: PipelineConfig, job: dg.UnresolvedAssetJobDefinition, description: str):
    """The sensor decorator both modes share: name, target job, interval and default status from the pipeline file."""
    running = pipeline.sensor.default_status == "running"
    return dg.sensor(
        name=sensor_name(pipeline),
        job=job,
        minimum_interval_seconds=pipeline.sensor.minimum_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING if running else dg.DefaultSensorStatus.STOPPED,
        description=description,
    )


def _window_sensor(pipeline: PipelineConfig, job: dg.UnresolvedAssetJobDefinition) -> dg.SensorDefinition:
    partitions = batches_partitions(pipeline.name)
    spec = WindowSpec.parse(pipeline.batches.window)

    @_batch_sensor(
        pipeline, job,
        f"Scans the flat source of pipeline '{pipeline.name}' and runs each {pipeline.batches.window} arrival "
        f"window once it closed {pipeline.batches.settle_seconds}s ago, and again when objects land in it late.",
    )
    def new_windows(context: dg.SensorEvaluationContext, synapse: SynapseResource,
                    sources: SourcesResource) -> dg.SensorResult:
        reap_dead_runs(context.instance, context.log.warning)
        try:
            root = sources.roots(pipeline, synapse)[0]
            cursor = WindowCursor.from_json(context.cursor)
            resumable = root.location.provider.resumable
            start_after = cursor.scan_after if resumable else None
            if not resumable:
                cursor = WindowCursor(ran=cursor.ran, scans=cursor.scans)  # local and SFTP cannot resume: scan whole
            with contextlib.closing(list_files(root.location, root.options, recursive=root.recursive,
                                                start_after=start_after)) as objects:
                tick = scan_windows(objects, cursor, spec, now=now(), settle_seconds=pipeline.batches.settle_seconds,
                                    max_objects=pipeline.sensor.max_objects_per_tick if resumable else None)
        except SourceError as exc:
            raise SourceError(redact(str(exc))) from None
        register_only = cursor.scans == 0 and pipeline.sensor.on_first_pass == "register"
        new = [w for w, _ in tick.due if not context.instance.has_dynamic_partition(partitions.name, w)]
        due = tick.due[: pipeline.sensor.max_batches_per_tick]
        for window, _ in tick.due[len(due):]:  # over the cap: forget them so the next complete scan asks again
            tick.cursor.ran.pop(window, None)
        summary = (f"scanned {tick.scanned} objects ({'scan complete' if tick.scan_complete else 'scan continues'}); "
                   f"{len(tick.due)} window(s) due, {len(tick.open_windows)} still open or settling")
        context.log.info(summary + (" (first pass: registered for backfill, no runs)" if register_only else ""))
        requests = [] if register_only else [
            dg.RunRequest(partition_key=w, run_key=f"{run_key(pipeline, w)}/{signature}", tags={"synapse/batch": w})
            for w, signature in due
        ]
        return dg.SensorResult(
            run_requests=requests,
            dynamic_partitions_requests=[partitions.build_add_request(new)] if new else [],
            cursor=tick.cursor.to_json(),
            skip_reason=None if requests else summary,
        )

    return new_windows
