"""The six assets of one ingestion pipeline, one small function each.

collection_specs → source_inventory → grouped_data_units → validated_meta → uploaded_files → created_units

Each function calls the core and hands its plain result to :mod:`.metadata` for what the UI shows; the checks
(:mod:`.checks`) and the Dagster wiring (:mod:`.pipeline`) live elsewhere. Errors that are the user's to fix
become one ``dg.Failure`` sentence, redacted.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from synapse_dagster.config.models import BatchMode, PipelineConfig
from synapse_dagster.core.batches.keys import BatchKeyError, check_batch_key
from synapse_dagster.core.batches.windows import WindowSpec
from synapse_dagster.core.deliver.claims import batch_claim, claimant
from synapse_dagster.core.deliver.creation import CreationReport, UnitStatus, dead_letters
from synapse_dagster.core.deliver.ledger import Ledger
from synapse_dagster.core.deliver.requests import UnitRequests
from synapse_dagster.core.deliver.tasks import create_tasks
from synapse_dagster.core.deliver.batch_delivery import DeliverySettings, deliver_plan
from synapse_dagster.core.deliver.upload import FileStatus, UploadReport
from synapse_dagster.core.meta.sheet_files import load_sheet, reserved_paths
from synapse_dagster.core.meta.sheets import MetadataError
from synapse_dagster.core.meta.validation import SchemaError, check_schema
from synapse_dagster.core.organize.detection import choose_pattern
from synapse_dagster.core.organize.grouping import GroupingResult, Organization, OrganizationError, group_files
from synapse_dagster.core.organize.layouts import SpecNames
from synapse_dagster.core.organize.specs import CollectionShapeError, CollectionSpecs
from synapse_dagster.core.plan.batch_plan import BatchPlan, FileAccess, plan_batch
from synapse_dagster.core.redaction import redact
from synapse_dagster.core.sources.files import FILE_CODEC, SourceError
from synapse_dagster.core.sources.inventory import Inventory, InventoryTally
from synapse_dagster.core.sources.roots import SourceRoot, batch_roots, list_roots, read_small
from synapse_dagster.core.synapse.bulk_upload import UploadTimeouts
from synapse_dagster.core.synapse.credentials import SynapseConfigError
from synapse_dagster.core.synapse.errors import LookupTarget, explain_lookup_error
from synapse_dagster.core.tables.row_table import Spill
from synapse_dagster.defs import metadata
from synapse_dagster.defs.resources import IngestStateResource, SourcesResource, SynapseResource


@dataclass(frozen=True)
class Step:
    """One asset's run: its Dagster context, its pipeline, and the resources, with the batch's sources."""

    context: dg.AssetExecutionContext
    pipeline: PipelineConfig

    @property
    def batch(self) -> str:
        return self.context.partition_key

    @property
    def synapse(self) -> SynapseResource:
        return self.context.resources.synapse

    def ledger(self) -> Ledger:
        state: IngestStateResource = self.context.resources.ingest_state
        return state.ledger()

    @contextlib.contextmanager
    def delivering(self, ledger: Ledger) -> Iterator[None]:
        """Hold the batch's delivery claim: a second launch of the same batch waits here, then finds it done."""
        scope = f"collection {self.pipeline.data_collection}, batch {self.batch}"
        with batch_claim(ledger, self.synapse.credentials().target, scope, claimant(self.context.run.run_id),
                         on_wait=lambda: self.context.log.info(f"another run is delivering {scope}; waiting for it")):
            yield

    def spill(self) -> Spill:
        """This materialization's folder for batch tables (see core.tables)."""
        state: IngestStateResource = self.context.resources.ingest_state
        return state.spill(pipeline=self.pipeline.name, batch=check_batch_key(self.batch),
                           asset=self.context.op_def.name.rsplit("__", 1)[-1], run_id=self.context.run.run_id)

    def roots(self) -> list[SourceRoot]:
        sources: SourcesResource = self.context.resources.sources
        return sources.roots(self.pipeline, self.synapse)

    @contextlib.contextmanager
    def failing_clearly(self, *errors: type[Exception], where: str = "", hint: str = "") -> Iterator[None]:
        """Errors that are the user's to fix end the step with one redacted sentence, not a traceback."""
        try:
            yield
        except errors as exc:
            raise dg.Failure(redact(f"{where}{exc}{hint}"), allow_retries=False) from None


def collection_specs(step: Step) -> dg.Output[CollectionSpecs]:
    pipeline, synapse = step.pipeline, step.synapse
    with step.failing_clearly(SynapseConfigError):
        client, creds = synapse.client(), synapse.credentials()
    target = LookupTarget(pipeline.name, creds.host, pipeline.data_collection, pipeline.storage, pipeline.project)
    try:
        raw = client.get_data_collection(pipeline.data_collection)
        storage = synapse.storage(pipeline.storage)
        project = client.get_project(pipeline.project) if pipeline.project else None
    except Exception as exc:
        message = explain_lookup_error(exc, target)
        if message is None:
            raise
        raise dg.Failure(message, allow_retries=False) from None
    with step.failing_clearly(CollectionShapeError, where=f"{pipeline.label}: "):
        specs = CollectionSpecs.from_api(raw)
    with step.failing_clearly(SchemaError, where=f"{pipeline.label}: data collection {pipeline.data_collection}'s ",
                              hint="; that is the collection's own schema, not the pipeline file: fix the schema in "
                              "Synapse, then run the batch again"):
        check_schema(specs.meta_schema)
    return dg.Output(specs, metadata=metadata.collection_specs(
        specs, host=creds.host, storage=storage, storage_id=pipeline.storage, project=project,
        project_id=pipeline.project))


def source_inventory(step: Step, collection_specs: CollectionSpecs) -> dg.Output[Inventory]:
    pipeline = step.pipeline
    with step.failing_clearly(SourceError, BatchKeyError, OrganizationError):
        if pipeline.assets is not None:
            collection_specs.check_source_specs(pipeline.assets, pipeline.label)
        roots = batch_roots(step.roots(), check_batch_key(step.batch),
                            per_batch_folder=pipeline.batches.mode is BatchMode.FOLDERS)
        tally = InventoryTally()
        listed = tally.counting(list_roots(roots, _window(pipeline, step.batch), on_progress=step.context.log.info))
        files = step.spill().table("inventory", FILE_CODEC, listed)
    inventory = Inventory(batch=step.batch, roots={(r.spec or "*"): r.location.uri for r in roots}, files=files,
                          tally=tally)
    return dg.Output(inventory, metadata=metadata.source_inventory(inventory))


def _window(pipeline: PipelineConfig, batch: str) -> tuple[int, int] | None:
    if pipeline.batches.mode is not BatchMode.WINDOWS:
        return None
    try:
        return WindowSpec.parse(pipeline.batches.window).bounds(batch)
    except ValueError as exc:
        raise SourceError(f"{pipeline.label}: {exc}") from None


def grouped_data_units(step: Step, collection_specs: CollectionSpecs, source_inventory: Inventory) -> dg.Output[GroupingResult]:
    pipeline, files = step.pipeline, source_inventory.files
    aliases = {k: tuple(v) for k, v in pipeline.spec_aliases.items()}
    detection = choose_pattern(pipeline.fixed_pattern, files, SpecNames(collection_specs, aliases))
    organization = Organization(pattern=detection.pattern, rules=pipeline.rules.rule_set() if pipeline.rules else None,
                                spec_aliases=aliases, sidecars=tuple(pipeline.metadata.sidecars))
    reserved = reserved_paths(pipeline.sheet_settings(), files, pipeline.batches.ready_marker)
    with step.failing_clearly(OrganizationError, where=f"{pipeline.label}: ", hint="; fix the pipeline file"):
        grouping = group_files(files, collection_specs, organization, reserved=reserved, spill=step.spill())
    grouping.detection = detection
    return dg.Output(grouping, metadata=metadata.grouped_data_units(grouping))


def validated_meta(step: Step, collection_specs: CollectionSpecs, source_inventory: Inventory,
                   grouped_data_units: GroupingResult) -> dg.Output[BatchPlan]:
    pipeline = step.pipeline
    with step.failing_clearly(MetadataError, SourceError, where=f"{pipeline.label}, batch '{step.batch}': "):
        roots = step.roots()
        sheet = load_sheet(pipeline.sheet_settings(), source_inventory.files, roots,
                           lambda: step.synapse.storage(pipeline.storage), storage_label=f"storage {pipeline.storage}")
    settings = pipeline.plan_settings()
    access = FileAccess(read_bytes=lambda f: read_small(f, roots))  # data files are read once, at upload
    plan = plan_batch(grouped_data_units, collection_specs, step.batch, settings, sheet=sheet, access=access,
                      spill=step.spill())
    plan.newest_mtime_ns = source_inventory.counts().newest_mtime_ns
    return dg.Output(plan, metadata=metadata.validated_meta(plan))


def delivery(step: Step, validated_meta: BatchPlan) -> tuple[dg.Output[UploadReport], dg.Output[CreationReport]]:
    """``uploaded_files`` and ``created_units`` in one step, so that units whose files are confirmed are created
    while later files are still uploading; with ``engine: ray``, shards of the plan do that on a Ray cluster."""
    pipeline, synapse = step.pipeline, step.synapse
    with step.failing_clearly(SourceError):
        roots = step.roots()
    settings = delivery_settings(pipeline, synapse)
    with step.ledger() as ledger, step.delivering(ledger):
        if pipeline.engine.kind == "ray":
            from synapse_dagster.defs.ray_delivery import deliver_on_ray

            done = deliver_on_ray(step, validated_meta, settings)
        else:
            done = deliver_plan(synapse.client(), validated_meta, roots, ledger, settings,
                                on_progress=step.context.log.info)
        uploads, created = done.uploads, done.created
        _log_upload_problems(step, uploads)
        _settle_creation(step, ledger, settings.target, created, done.wanted)
    return (dg.Output(uploads, output_name="uploaded_files", metadata=metadata.uploaded_files(uploads)),
            dg.Output(created, output_name="created_units", metadata=metadata.created_units(
                created, validated_meta, uploads, host=synapse.credentials().host,
                collection_id=pipeline.data_collection)))


def delivery_settings(pipeline: PipelineConfig, synapse: SynapseResource) -> DeliverySettings:
    return DeliverySettings(
        data_collection=pipeline.data_collection, target=synapse.credentials().target,
        batch_size=pipeline.creating_data_unit_batch_size, on_collision=pipeline.on_dataset_key_collision,
        upload_max_workers=pipeline.upload_max_workers, staging_max_bytes=pipeline.staging_max_mb * 2**20,
        content_policy=pipeline.content_policy.policy(),
        timeouts=UploadTimeouts(put_s=synapse.upload_timeout_s, api_s=synapse.read_timeout_s))


def _log_upload_problems(step: Step, uploads: UploadReport) -> None:
    for error, paths in uploads.by_cause(FileStatus.FAILED).items():
        step.context.log.warning(f"upload failed for {_some(paths)}: {error}")
    for note, paths in uploads.notes().items():
        step.context.log.warning(f"uploaded with a warning {_some(paths)}: {note}")


def _settle_creation(step: Step, ledger: Ledger, target: str, report: CreationReport, wanted: UnitRequests) -> None:
    """What creation leaves to record: collisions in the log, units that never got a request, dead letters, tasks."""
    pipeline, synapse = step.pipeline, step.synapse
    for outcome in report.by_status(UnitStatus.COLLIDED):
        step.context.log.warning(outcome.error or outcome.dataset_key)
    report.skipped, report.held_back = wanted.skipped, wanted.held_back
    ledger.record_dead_letters(target, pipeline.data_collection, step.batch, dead_letters(report),
                               [k for k, o in report.outcomes.items() if o.status != "failed"])
    if pipeline.project:
        report.tasks = create_tasks(synapse.client(), pipeline.project, report.unit_ids(), ledger=ledger,
                                    target=target, batch_size=pipeline.creating_data_unit_batch_size)


def _some(paths: list[str]) -> str:
    return ", ".join(paths[:5]) + (f" and {len(paths) - 5} more" if len(paths) > 5 else "")
