"""The six assets of one ingestion pipeline, partitioned per batch.

collection_specs → source_inventory → grouped_data_units → validated_meta → uploaded_files → created_units

Each body is a thin call into ``synapse_dagster.core`` plus the metadata people look at in the UI.
``validated_meta`` carries the blocking gates, so a batch that is mostly invalid never uploads.
"""

import contextlib
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
from synapse_sdk.exceptions import AuthenticationError, AuthorizationError, ClientConnectionError, NotFoundError

from synapse_dagster import reports
from synapse_dagster.core.deliver.creation import UnitRequest, UnitStatus, create_units
from synapse_dagster.core.plan.gates import GATE_DESCRIPTIONS, evaluate_gates
from synapse_dagster.core.organize.grouping import GroupingResult, IssueKind, Organization, OrganizationError, group_files
from synapse_dagster.core.sources.files import SourceError, SourceFile
from synapse_dagster.core.organize.detection import Detection, detect_pattern
from synapse_dagster.core.organize.layouts import SpecNames
from synapse_dagster.core.meta.sheets import MetadataError
from synapse_dagster.core.plan.batch_plan import BatchPlan, plan_batch
from synapse_dagster.core.plan.report import plan_markdown
from synapse_dagster.core.redaction import redact
from synapse_dagster.core.sources.staging import staged_copies
from synapse_dagster.core.plan.screening import unsafe_reason
from synapse_dagster.core.organize.specs import CollectionSpecs
from synapse_dagster.core.deliver.upload import FileStatus, UploadReport, upload_files
from synapse_dagster.metadata_files import load_sheet, reserved_paths
from synapse_dagster.partitions import batches_partitions
from synapse_dagster.pipeline_config import PipelineConfig
from synapse_dagster.resources import IngestStateResource, SynapseResource
from synapse_dagster.sources import (
    SourceRoot,
    batch_roots,
    check_multi_path_specs,
    list_batch,
    read_small,
    resolve_roots,
    storage_lookup,
)

ASSET_NAMES = (
    "collection_specs",
    "source_inventory",
    "grouped_data_units",
    "validated_meta",
    "uploaded_files",
    "created_units",
)
ALL_CREATED_CHECK = "all_valid_units_created"


@dataclass(frozen=True)
class Inventory:
    """What ``source_inventory`` hands on: the files plus where they were listed."""

    batch: str
    roots: dict[str, str]  # spec (or "*") -> folder
    files: list[SourceFile]


def asset_key(pipeline: PipelineConfig, name: str) -> dg.AssetKey:
    return dg.AssetKey([pipeline.name, name])


def build_pipeline_assets(pipeline: PipelineConfig, base_dir: Path) -> list[dg.AssetsDefinition]:
    """All assets of ``pipeline``; relative source paths resolve against ``base_dir`` (the pipeline file's folder)."""
    partitions = batches_partitions(pipeline.name)
    key = lambda name: asset_key(pipeline, name)  # noqa: E731
    common = dict(partitions_def=partitions, group_name=pipeline.name)
    collection_id = pipeline.data_collection

    @dg.asset(
        key=key("collection_specs"),
        description=f"File specifications and meta schema of data collection {collection_id}, fetched from Synapse.",
        kinds={"synapse"},
        **common,
    )
    def collection_specs(context: dg.AssetExecutionContext, synapse: SynapseResource) -> dg.Output[CollectionSpecs]:
        client = synapse.client()
        creds = synapse.credentials()
        try:
            raw = client.get_data_collection(collection_id)
            storage = client.get_storage(pipeline.storage)
            project = client.get_project(pipeline.project) if pipeline.project else None
        except AuthenticationError:
            raise dg.Failure(f"Synapse at {creds.host} rejected the access token (401); set SYNAPSE_ACCESS_TOKEN or run 'synapse login'") from None
        except AuthorizationError:
            raise dg.Failure(f"the access token may not read data collection {collection_id} or storage {pipeline.storage} (403)") from None
        except NotFoundError as exc:
            raise dg.Failure(
                f"pipeline '{pipeline.name}': Synapse at {creds.host} has no data collection {collection_id}, storage "
                f"{pipeline.storage} or project {pipeline.project} ({redact(str(exc))}); check data_collection, storage "
                "and project in the pipeline file"
            ) from None
        except ClientConnectionError as exc:
            raise dg.Failure(f"cannot reach Synapse at {creds.host}: {redact(str(exc))}; check SYNAPSE_HOST") from None
        specs = CollectionSpecs.from_api(raw)
        schema = specs.meta_schema or {}
        required_meta = list(schema.get("required") or [])
        return dg.Output(
            specs,
            metadata={
                "collection": f"{specs.name} (id {specs.collection_id})",
                "collection_api": dg.MetadataValue.url(f"{creds.host}/data_collections/{collection_id}/"),
                "storage": f"{getattr(storage, 'name', '?')} (id {pipeline.storage}, {getattr(storage, 'provider', '?')})",
                "file_specifications": reports.table(
                    [
                        {"name": s.name, "extensions": " ".join(s.extensions), "required": s.is_required, "file_type": s.file_type}
                        for s in specs.specs
                    ],
                    [("name", "string"), ("extensions", "string"), ("required", "bool"), ("file_type", "string")],
                ),
                "meta_schema": dg.MetadataValue.json(dict(schema)) if schema else "none (meta is not validated)",
                "required_meta_fields": ", ".join(required_meta) or "none",
                "project": f"{project.get('title') or project.get('name') or '?'} (id {pipeline.project})" if project else "none",
            },
        )

    @dg.asset(
        key=key("source_inventory"),
        ins={"collection_specs": dg.AssetIn(key("collection_specs"))},
        description="Every file of the batch with size and modification time; system junk is marked, not dropped.",
        kinds={"python"},
        **common,
    )
    def source_inventory(
        context: dg.AssetExecutionContext, synapse: SynapseResource, collection_specs: CollectionSpecs
    ) -> dg.Output[Inventory]:
        batch = context.partition_key
        try:
            check_multi_path_specs(pipeline, collection_specs)
            roots = batch_roots(pipeline, batch, resolve_roots(pipeline, base_dir, storage_lookup(synapse, pipeline.storage)))
            files = list(list_batch(roots, pipeline, batch))
        except SourceError as exc:
            raise dg.Failure(redact(str(exc))) from None
        inventory = Inventory(batch=batch, roots={(r.spec or "*"): r.location.uri for r in roots}, files=files)
        kept = [f for f in files if not f.excluded_reason]
        total = sum(f.size for f in kept)
        return dg.Output(
            inventory,
            metadata={
                "dagster/row_count": len(kept),
                "files": len(kept),
                "bytes": total,
                "size": reports.human_bytes(total),
                "excluded_system_files": len(files) - len(kept),
                "source": dg.MetadataValue.md("\n".join(f"- `{k}`: `{v}`" for k, v in inventory.roots.items())),
                "extensions": dg.MetadataValue.json(reports.top_counts(f.extension or "(none)" for f in kept)),
                "sample": reports.table(
                    [{"path": f.relative_path, "bytes": f.size, "spec_source": f.source_spec} for f in kept],
                    [("path", "string"), ("bytes", "int"), ("spec_source", "string")],
                ),
            },
        )

    @dg.asset(
        key=key("grouped_data_units"),
        ins={
            "collection_specs": dg.AssetIn(key("collection_specs")),
            "source_inventory": dg.AssetIn(key("source_inventory")),
        },
        description="Files grouped into data units by the batch's directory pattern (detected or set) and mapped "
        "to specs; every file is in one unit or in the report.",
        kinds={"python"},
        **common,
    )
    def grouped_data_units(
        context: dg.AssetExecutionContext, collection_specs: CollectionSpecs, source_inventory: Inventory
    ) -> dg.Output[GroupingResult]:
        reserved = reserved_paths(pipeline, source_inventory.files)
        detection = _pattern_for(pipeline, collection_specs, source_inventory.files)
        organization = Organization(
            pattern=detection.pattern,
            rules=pipeline.rules.rule_set() if pipeline.rules else None,
            spec_aliases={k: tuple(v) for k, v in pipeline.spec_aliases.items()},
            sidecars=tuple(pipeline.metadata.sidecars),
        )
        try:
            grouping = group_files(source_inventory.files, collection_specs, organization, reserved=reserved)
        except OrganizationError as exc:
            raise dg.Failure(f"pipeline '{pipeline.name}': {exc}; fix the pipeline file") from None
        grouping.detection = detection
        issue_counts = Counter(i.kind for i in grouping.issues)
        return dg.Output(
            grouping,
            metadata={
                "dagster/row_count": len(grouping.units),
                "pattern": detection.describe(),
                "pattern_evidence": dg.MetadataValue.md("\n".join(f"- {e}" for e in detection.evidence) or "-"),
                "units": len(grouping.units),
                "complete_units": len(grouping.complete_units),
                "incomplete_units": len(grouping.incomplete_units),
                "unmatched_files": issue_counts.get(IssueKind.UNMATCHED, 0),
                "ambiguous_files": issue_counts.get(IssueKind.AMBIGUOUS, 0),
                "excluded_files": issue_counts.get(IssueKind.EXCLUDED, 0),
                "metadata_files": issue_counts.get(IssueKind.METADATA, 0) + sum(len(u.sidecars) for u in grouping.units),
                "units_sample": reports.table(
                    [
                        {"group_key": u.group_key, "files": ", ".join(f"{s}={f.relative_path}" for s, f in sorted(u.files.items())),
                         "problems": "; ".join(u.problems)}
                        for u in grouping.units
                    ],
                    [("group_key", "string"), ("files", "string"), ("problems", "string")],
                ),
                "files_not_in_units": reports.table(
                    [{"path": i.relative_path, "kind": i.kind, "reason": i.reason} for i in grouping.issues],
                    [("path", "string"), ("kind", "string"), ("reason", "string")],
                ),
            },
        )

    gate_specs = [
        dg.AssetCheckSpec(name, asset=key("validated_meta"), blocking=True, description=text)
        for name, text in GATE_DESCRIPTIONS.items()
    ]

    @dg.asset(
        key=key("validated_meta"),
        ins={
            "collection_specs": dg.AssetIn(key("collection_specs")),
            "source_inventory": dg.AssetIn(key("source_inventory")),
            "grouped_data_units": dg.AssetIn(key("grouped_data_units")),
        },
        check_specs=gate_specs,
        description="The batch's reviewed plan: each unit's meta merged from its sources with provenance, coerced "
        "and validated against the collection's meta schema; incomplete units, invalid meta, unsafe or oversized "
        "files hold their unit back. Materializing up to here is a dry run: nothing is written to Synapse.",
        kinds={"python"},
        **common,
    )
    def validated_meta(
        context: dg.AssetExecutionContext,
        synapse: SynapseResource,
        collection_specs: CollectionSpecs,
        source_inventory: Inventory,
        grouped_data_units: GroupingResult,
    ):
        batch = context.partition_key
        storage = storage_lookup(synapse, pipeline.storage)
        try:
            roots = batch_roots(pipeline, batch, resolve_roots(pipeline, base_dir, storage))
            sheet = load_sheet(pipeline, source_inventory.files, roots, storage)
        except (MetadataError, SourceError) as exc:
            raise dg.Failure(redact(f"pipeline '{pipeline.name}', batch '{batch}': {exc}")) from None
        plan = plan_batch(
            grouped_data_units,
            collection_specs,
            pipeline=pipeline.name,
            batch=batch,
            dataset_key_template=pipeline.dataset_key_template,
            recipe=pipeline.metadata.recipe(),
            sheet=sheet,
            read_bytes=lambda f: read_small(f, roots),
            max_file_bytes=pipeline.max_file_size_mb * 2**20,
            screen=_screen_local,  # remote files are screened once staged, just before upload
            detection=grouped_data_units.detection,
        )
        valid, invalid = plan.valid_units, plan.invalid_units
        yield dg.Output(
            plan,
            metadata={
                "dagster/row_count": len(valid),
                "valid_units": len(valid),
                "invalid_units": len(invalid),
                "bytes_to_send": sum(u.total_bytes for u in valid),
                "metadata_sheet": plan.metadata_file or "none",
                "sheet_rows_without_unit": len(plan.sheet_rows_without_unit),
                "units_without_sheet_row": len(plan.units_without_sheet_row),
                "problems_by_kind": dg.MetadataValue.json(dict(plan.problem_counts())),
                "invalid_report": dg.MetadataValue.md(
                    reports.reasons_markdown("Held back", [(u.group_key, u.problems) for u in invalid])
                ),
                "plan": dg.MetadataValue.md(plan_markdown(plan)),
                "units": reports.table(
                    [{"dataset_key": u.dataset_key, "valid": u.is_valid, "meta": _json(u.meta), "problems": "; ".join(u.problems)} for u in plan.units],
                    [("dataset_key", "string"), ("valid", "bool"), ("meta", "string"), ("problems", "string")],
                ),
            },
        )
        for gate in evaluate_gates(plan, pipeline.max_invalid_fraction):
            yield dg.AssetCheckResult(
                check_name=gate.name,
                asset_key=key("validated_meta"),
                passed=gate.passed,
                severity=dg.AssetCheckSeverity.WARN if not (gate.passed or gate.blocking_failure) else dg.AssetCheckSeverity.ERROR,
                description=gate.description,
                metadata={"held_back_units": len(gate.held_back), "units": ", ".join(gate.held_back[:50]) or "none"},
            )

    @dg.asset(
        key=key("uploaded_files"),
        ins={"validated_meta": dg.AssetIn(key("validated_meta"))},
        description="Files of valid units uploaded through presigned URLs in parallel; files already confirmed "
        "on this Synapse are not sent again.",
        kinds={"synapse"},
        pool="synapse_api",
        **common,
    )
    def uploaded_files(
        context: dg.AssetExecutionContext, synapse: SynapseResource, ingest_state: IngestStateResource, validated_meta: BatchPlan
    ) -> dg.Output[UploadReport]:
        files = [f for unit in validated_meta.valid_units for f in unit.files.values()]
        client = synapse.client()
        try:
            roots = resolve_roots(pipeline, base_dir, storage_lookup(synapse, pipeline.storage))
        except SourceError as exc:
            raise dg.Failure(redact(str(exc))) from None
        failures: dict[str, str] = {}
        with ingest_state.ledger() as ledger, tempfile.TemporaryDirectory(prefix="synapse-staging-") as workdir:
            report = upload_files(
                client,
                files,
                ledger=ledger,
                target=synapse.credentials().target,
                stage=_stager(roots, Path(workdir), pipeline.staging_max_mb * 2**20, failures),
                screen=None if all(r.is_local for r in roots) else unsafe_reason,
                stage_failures=failures,
                max_workers=pipeline.upload_max_workers,
                on_slice_done=lambda done, total: context.log.info(f"uploaded {done}/{total} files"),
            )
        failed = report.by_status(FileStatus.FAILED)
        for f in failed[:20]:
            context.log.warning(f"upload failed for {f.relative_path}: {f.error}")
        rate = report.bytes_sent / report.seconds if report.seconds > 0 else 0.0
        return dg.Output(
            report,
            metadata={
                "dagster/row_count": len(report.files) - len(failed),
                "uploaded": len(report.by_status(FileStatus.UPLOADED)),
                "already_uploaded": len(report.by_status(FileStatus.ALREADY_UPLOADED)),
                "failed": len(failed),
                "bytes_sent": report.bytes_sent,
                "throughput": f"{reports.human_bytes(rate)}/s",
                "failures": reports.table(
                    [{"path": f.relative_path, "error": f.error} for f in failed], [("path", "string"), ("error", "string")]
                ),
            },
        )

    @dg.asset(
        key=key("created_units"),
        ins={
            "validated_meta": dg.AssetIn(key("validated_meta")),
            "uploaded_files": dg.AssetIn(key("uploaded_files")),
        },
        check_specs=[
            dg.AssetCheckSpec(
                ALL_CREATED_CHECK,
                asset=key("created_units"),
                description="Every valid unit of the batch exists in the data collection.",
            )
        ],
        description=f"Data units created in data collection {collection_id}, in batches of "
        f"{pipeline.creating_data_unit_batch_size}, once per dataset_key however often the batch runs.",
        kinds={"synapse"},
        pool="synapse_api",
        **common,
    )
    def created_units(
        context: dg.AssetExecutionContext,
        synapse: SynapseResource,
        ingest_state: IngestStateResource,
        validated_meta: BatchPlan,
        uploaded_files: UploadReport,
    ):
        requests, skipped = [], []
        for unit in validated_meta.valid_units:
            uploads = {spec: uploaded_files.files.get(f.fingerprint) for spec, f in unit.files.items()}
            broken = [f"{spec}: {u.error if u else 'not uploaded'}" for spec, u in uploads.items() if not u or not u.checksum]
            if broken:
                skipped.append((unit.dataset_key, broken))
                continue
            files = {spec: {"checksum": u.checksum, "path": unit.files[spec].relative_path} for spec, u in uploads.items()}
            requests.append(UnitRequest(unit.dataset_key, files, unit.meta))
        client = synapse.client()
        with ingest_state.ledger() as ledger:
            report = create_units(
                client,
                collection_id,
                requests,
                ledger=ledger,
                target=synapse.credentials().target,
                batch=context.partition_key,
                batch_size=pipeline.creating_data_unit_batch_size,
            )
        created = report.by_status(UnitStatus.CREATED)
        existing = report.by_status(UnitStatus.EXISTING)
        failed = report.by_status(UnitStatus.FAILED)
        rows = [{"dataset_key": o.dataset_key, "status": o.status, "unit_id": o.unit_id, "error": o.error} for o in report.outcomes.values()]
        rows += [{"dataset_key": k, "status": "skipped", "unit_id": None, "error": "; ".join(r)} for k, r in skipped]
        yield dg.Output(
            report,
            metadata={
                "dagster/row_count": len(created) + len(existing),
                "created": len(created),
                "already_existed": len(existing),
                "failed": len(failed),
                "skipped_upload_failed": len(skipped),
                "held_back_invalid": len(validated_meta.invalid_units),
                "reconciled_with_server": report.reconciled,
                "create_requests": report.requests_sent,
                "collection_api": dg.MetadataValue.url(f"{synapse.credentials().host}/data_collections/{collection_id}/"),
                "units": reports.table(rows, [("dataset_key", "string"), ("status", "string"), ("unit_id", "int"), ("error", "string")]),
            },
        )
        problems = len(failed) + len(skipped)
        yield dg.AssetCheckResult(
            check_name=ALL_CREATED_CHECK,
            asset_key=key("created_units"),
            passed=problems == 0,
            severity=dg.AssetCheckSeverity.ERROR,
            description=f"{len(created) + len(existing)} of {len(validated_meta.valid_units)} valid units exist"
            + (f"; {problems} did not make it (re-run the batch to retry them)" if problems else ""),
            metadata={"missing_units": problems},
        )

    return [collection_specs, source_inventory, grouped_data_units, validated_meta, uploaded_files, created_units]


def _screen_local(uri: str) -> str | None:
    return unsafe_reason(uri) if "://" not in uri else None


def _stager(roots: list[SourceRoot], workdir: Path, max_bytes: int, failures: dict[str, str]):
    """Local files pass through; remote ones are copied per source (each has its own credentials), bounded."""

    @contextlib.contextmanager
    def stage(files: list[SourceFile]):
        def slices():
            for root in roots:
                mine = [f for f in files if f.source_spec == root.spec]
                if not mine:
                    continue
                if root.is_local:
                    yield {f.fingerprint: Path(f.uri) for f in mine}
                    continue
                with staged_copies(mine, root.options, workdir, max_bytes, failures=failures) as copies:
                    yield from copies

        yield slices()

    return stage


def _pattern_for(pipeline: PipelineConfig, specs: CollectionSpecs, files: list[SourceFile]) -> Detection:
    fixed = pipeline.fixed_pattern
    if fixed is not None:
        return Detection(fixed, [f"pattern '{fixed.value}' is set in the pipeline file"], detected=False)
    aliases = {k: tuple(v) for k, v in pipeline.spec_aliases.items()}
    return detect_pattern(files, SpecNames(specs, aliases))


def _json(value: object) -> str:
    import json

    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
