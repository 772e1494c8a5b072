"""The six assets of one ingestion pipeline, partitioned per batch.

collection_specs → source_inventory → grouped_data_units → validated_meta → uploaded_files → created_units

Each body is a thin call into ``synapse_dagster.core`` plus the metadata people look at in the UI.
``validated_meta`` carries a blocking check, so a batch that is mostly invalid never uploads.
"""

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
from synapse_sdk.exceptions import AuthenticationError, AuthorizationError, ClientConnectionError, NotFoundError

from synapse_dagster import reports
from synapse_dagster.batch_sources import batch_sources, check_multi_path_specs, list_batch
from synapse_dagster.core.creation import UnitRequest, UnitStatus, create_units
from synapse_dagster.core.grouping import GroupingResult, IssueKind, group_files
from synapse_dagster.core.inventory import SourceFile
from synapse_dagster.core.metadata import find_metadata_file, read_metadata_table
from synapse_dagster.core.plan import BatchPlan, plan_batch
from synapse_dagster.core.redaction import redact
from synapse_dagster.core.screening import unsafe_reason
from synapse_dagster.core.specs import CollectionSpecs
from synapse_dagster.core.upload import FileStatus, UploadReport, upload_files
from synapse_dagster.partitions import batches_partitions
from synapse_dagster.pipeline_config import PipelineConfig
from synapse_dagster.resources import IngestStateResource, SynapseResource

ASSET_NAMES = (
    "collection_specs",
    "source_inventory",
    "grouped_data_units",
    "validated_meta",
    "uploaded_files",
    "created_units",
)
UPLOADABLE_CHECK = "batch_is_uploadable"
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
    def source_inventory(context: dg.AssetExecutionContext, collection_specs: CollectionSpecs) -> dg.Output[Inventory]:
        batch = context.partition_key
        check_multi_path_specs(pipeline, collection_specs)
        sources = batch_sources(pipeline, batch, base_dir)
        files = list(list_batch(sources))
        kept = [f for f in files if not f.excluded_reason]
        total = sum(f.size for f in kept)
        inventory = Inventory(batch=batch, roots={(s.spec or "*"): str(s.root) for s in sources}, files=files)
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
        description=f"Files grouped into data units by {pipeline.group_by.value} and mapped to specs; "
        "every file is in one unit or in the report.",
        kinds={"python"},
        **common,
    )
    def grouped_data_units(
        context: dg.AssetExecutionContext, collection_specs: CollectionSpecs, source_inventory: Inventory
    ) -> dg.Output[GroupingResult]:
        reserved = _metadata_file_reservation(pipeline, source_inventory)
        grouping = group_files(source_inventory.files, collection_specs, pipeline.group_by, reserved=reserved)
        issue_counts = Counter(i.kind for i in grouping.issues)
        return dg.Output(
            grouping,
            metadata={
                "dagster/row_count": len(grouping.units),
                "units": len(grouping.units),
                "complete_units": len(grouping.complete_units),
                "incomplete_units": len(grouping.incomplete_units),
                "unmatched_files": issue_counts.get(IssueKind.UNMATCHED, 0),
                "ambiguous_files": issue_counts.get(IssueKind.AMBIGUOUS, 0),
                "excluded_files": issue_counts.get(IssueKind.EXCLUDED, 0),
                "units_sample": reports.table(
                    [
                        {"group_key": u.group_key, "files": ", ".join(f"{s}={f.name}" for s, f in sorted(u.files.items())),
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

    @dg.asset(
        key=key("validated_meta"),
        ins={
            "collection_specs": dg.AssetIn(key("collection_specs")),
            "grouped_data_units": dg.AssetIn(key("grouped_data_units")),
        },
        check_specs=[
            dg.AssetCheckSpec(
                UPLOADABLE_CHECK,
                asset=key("validated_meta"),
                blocking=True,
                description=f"At least one valid unit, and at most {pipeline.max_invalid_fraction:.0%} of units held back.",
            )
        ],
        description="Each unit's meta merged (sheet, folder, static values), coerced and validated against the "
        "collection's meta schema; unsafe or oversized files hold their unit back.",
        kinds={"python"},
        **common,
    )
    def validated_meta(context: dg.AssetExecutionContext, collection_specs: CollectionSpecs, grouped_data_units: GroupingResult):
        batch = context.partition_key
        sources = batch_sources(pipeline, batch, base_dir)
        sheet = None
        if pipeline.single_path or pipeline.metadata.excel_path:
            sheet_path = find_metadata_file(sources[0].root, pipeline.metadata.excel_path)
            if sheet_path is not None:
                sheet = read_metadata_table(sheet_path, pipeline.metadata.key_column)
        plan = plan_batch(
            grouped_data_units,
            collection_specs,
            pipeline=pipeline.name,
            batch=batch,
            dataset_key_template=pipeline.dataset_key_template,
            sheet=sheet,
            directory_field=pipeline.metadata.directory_field,
            static_meta=pipeline.metadata.static,
            max_file_bytes=pipeline.max_file_size_mb * 2**20,
            screen=unsafe_reason,
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
                "invalid_report": dg.MetadataValue.md(
                    reports.reasons_markdown("Held back", [(u.group_key, u.problems) for u in invalid])
                ),
                "units": reports.table(
                    [{"dataset_key": u.dataset_key, "valid": u.is_valid, "meta": _json(u.meta), "problems": "; ".join(u.problems)} for u in plan.units],
                    [("dataset_key", "string"), ("valid", "bool"), ("meta", "string"), ("problems", "string")],
                ),
            },
        )
        share = plan.invalid_fraction
        passed = bool(valid) and share <= pipeline.max_invalid_fraction
        yield dg.AssetCheckResult(
            check_name=UPLOADABLE_CHECK,
            asset_key=key("validated_meta"),
            passed=passed,
            description=(
                f"{len(valid)} of {len(plan.units)} units valid ({share:.0%} held back, limit {pipeline.max_invalid_fraction:.0%})"
                if plan.units
                else "the batch holds no data units"
            ),
            metadata={"valid_units": len(valid), "invalid_units": len(invalid), "invalid_fraction": float(share)},
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
        with ingest_state.ledger() as ledger:
            report = upload_files(
                client,
                files,
                ledger=ledger,
                target=synapse.credentials().target,
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


def _metadata_file_reservation(pipeline: PipelineConfig, inventory: Inventory) -> dict[str, str]:
    """The metadata sheet sits among the data in single-path mode; keep it out of the unmatched report."""
    if not pipeline.single_path:
        return {}
    root = Path(inventory.roots.get("*", ""))
    try:
        sheet = find_metadata_file(root, pipeline.metadata.excel_path)
    except ValueError:
        return {}
    if sheet is None:
        return {}
    try:
        rel = sheet.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return {}
    return {rel: "metadata sheet"}


def _json(value: object) -> str:
    import json

    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
