"""What each materialization shows in the Dagster UI: numbers Dagster can plot, tables, markdown and links.

Plain results in, ``dg.MetadataValue`` out; the assets only pick which function to call.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from itertools import islice
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import dagster as dg

from synapse_dagster.core.charts import bar_chart_svg, svg_markdown
from synapse_dagster.core.deliver.batch_report import batch_markdown
from synapse_dagster.core.sizes import human_bytes
from synapse_dagster.core.deliver.creation import CreationReport, UnitStatus
from synapse_dagster.core.deliver.upload import FileStatus, UploadReport
from synapse_dagster.core.organize.grouping import GroupingResult, IssueKind
from synapse_dagster.core.organize.specs import CollectionSpecs
from synapse_dagster.core.plan.batch_plan import BatchPlan
from synapse_dagster.core.plan.report import plan_markdown
from synapse_dagster.core.sources.inventory import Inventory

SAMPLE_ROWS = 50


def table(rows: Iterable[Mapping[str, Any]], columns: Sequence[tuple[str, str]], limit: int = SAMPLE_ROWS) -> dg.MetadataValue:
    """A table of at most ``limit`` rows; ``columns`` are ``(name, type)`` with Dagster's type names."""
    schema = dg.TableSchema(columns=[dg.TableColumn(name, kind) for name, kind in columns])
    records = [dg.TableRecord({name: _cell(row.get(name), kind) for name, kind in columns}) for row in islice(rows, limit)]
    return dg.MetadataValue.table(records=records, schema=schema)


def _cell(value: Any, kind: str) -> Any:
    if value is None:
        return "" if kind == "string" else None
    return str(value) if kind == "string" else value


def reasons_markdown(title: str, items: Iterable[tuple[str, list[str]]], limit: int = SAMPLE_ROWS,
                     total: int | None = None) -> str:
    """The first ``limit`` of ``items``; pass ``total`` when ``items`` is a stream of a longer table."""
    shown = list(islice(items, limit + 1 if total is None else limit))
    count = len(shown) if total is None else total
    if not count:
        return f"**{title}**: none"
    lines = [f"**{title}** ({count})", ""]
    lines += [f"- `{name}`: " + "; ".join(reasons) for name, reasons in shown[:limit]]
    if count > limit:
        lines.append(f"- … and {count - limit} more")
    return "\n".join(lines)


def top_counts(values: Iterable[str], n: int = 20) -> dict[str, int]:
    return dict(Counter(values).most_common(n))


VALID_COLOR, PROBLEM_COLOR = "#2a9d8f", "#e76f51"  # every problem kind warm, so none reads as valid


def chart(title: str, counts: Mapping[str, int], colors: Mapping[str, str] | None = None) -> dg.MetadataValue:
    """A bar chart the UI draws inline (an SVG image in markdown)."""
    return dg.MetadataValue.md(svg_markdown(bar_chart_svg(title, counts, colors=colors), title))


def collection_url(host: str, collection_id: int) -> str:
    return f"{host}/data_collections/{collection_id}/"


def collection_link(host: str, collection_id: int) -> dg.MetadataValue:
    return dg.MetadataValue.url(collection_url(host, collection_id))


def collection_specs(specs: CollectionSpecs, *, host: str, storage: Mapping[str, Any], storage_id: int,
                     project: Mapping[str, Any] | None, project_id: int | None) -> dict[str, Any]:
    schema = specs.meta_schema or {}
    spec_rows = [{"name": s.name, "extensions": " ".join(s.extensions), "required": s.is_required, "file_type": s.file_type}
                 for s in specs.specs]
    return {
        "collection": f"{specs.name} (id {specs.collection_id})",
        "collection_api": collection_link(host, specs.collection_id),
        "storage": f"{storage.get('name', '?')} (id {storage_id}, {storage.get('provider', '?')})",
        "file_specifications": table(spec_rows, [("name", "string"), ("extensions", "string"), ("required", "bool"),
                                                 ("file_type", "string")]),
        "meta_schema": dg.MetadataValue.json(dict(schema)) if schema else "none (meta is not validated)",
        "required_meta_fields": ", ".join(schema.get("required") or []) or "none",
        "project": f"{project.get('title') or project.get('name') or '?'} (id {project_id})" if project else "none",
    }


def source_inventory(inventory: Inventory) -> dict[str, Any]:
    counts = inventory.counts()
    return {
        "dagster/row_count": counts.kept,
        "files": counts.kept,
        "bytes": counts.bytes,
        "size": human_bytes(counts.bytes),
        "excluded_system_files": counts.excluded,
        **_freshness(counts.newest_mtime_ns, "newest_file"),
        "refused_files": counts.refused,
        "source": dg.MetadataValue.md("\n".join(f"- `{k}`: `{v}`" for k, v in inventory.roots.items())),
        "extensions": dg.MetadataValue.json(dict(counts.extensions.most_common(20))),
        "files_per_extension_chart": chart(f"Files per extension ({counts.kept:,} files)",
                                           {ext or "(none)": n for ext, n in counts.extensions.items()}),
        "sample": table(({"path": f.relative_path, "bytes": f.size, "spec_source": f.source_spec}
                         for f in counts.sample),
                        [("path", "string"), ("bytes", "int"), ("spec_source", "string")]),
    }


def grouped_data_units(grouping: GroupingResult) -> dict[str, Any]:
    issue_counts = grouping.issue_counts()
    detection = grouping.detection
    units = ({"group_key": u.group_key, "files": ", ".join(f"{s}={f.relative_path}" for s, f in sorted(u.files.items())),
              "problems": "; ".join(u.problems)} for u in grouping.units[:SAMPLE_ROWS])
    return {
        "dagster/row_count": len(grouping.units),
        "pattern": detection.describe() if detection else "?",
        "pattern_evidence": dg.MetadataValue.md("\n".join(f"- {e}" for e in (detection.evidence if detection else [])) or "-"),
        "units": len(grouping.units),
        "complete_units": len(grouping.complete_units),
        "incomplete_units": len(grouping.incomplete_units),
        "unmatched_files": issue_counts.get(IssueKind.UNMATCHED, 0),
        "ambiguous_files": issue_counts.get(IssueKind.AMBIGUOUS, 0),
        "excluded_files": issue_counts.get(IssueKind.EXCLUDED, 0),
        "refused_files": issue_counts.get(IssueKind.REFUSED, 0),
        "metadata_files": issue_counts.get(IssueKind.METADATA, 0) + grouping.sidecar_count(),
        "units_sample": table(units, [("group_key", "string"), ("files", "string"), ("problems", "string")]),
        "files_not_in_units": table(({"path": i.relative_path, "kind": i.kind, "reason": i.reason}
                                     for i in grouping.issues[:SAMPLE_ROWS]),
                                    [("path", "string"), ("kind", "string"), ("reason", "string")]),
    }


def validated_meta(plan: BatchPlan) -> dict[str, Any]:
    valid, invalid = plan.valid_units, plan.invalid_units
    units = ({"dataset_key": u.dataset_key, "valid": u.is_valid, "meta": _json(u.meta), "problems": "; ".join(u.problems)}
             for u in plan.units[:SAMPLE_ROWS])
    return {
        "dagster/row_count": len(valid),
        "valid_units": len(valid),
        "invalid_units": len(invalid),
        "bytes_to_send": plan.bytes_to_send,
        "metadata_sheet": plan.metadata_file or "none",
        "sheet_rows_without_unit": len(plan.sheet_rows_without_unit),
        "units_without_sheet_row": len(plan.units_without_sheet_row),
        "sheet_duplicate_keys": len(plan.sheet_duplicate_keys),
        "problems_by_kind": dg.MetadataValue.json(dict(plan.problem_counts())),
        "units_chart": chart(f"Units: {len(valid):,} valid, {len(invalid):,} held back (by problem)",
                             {"valid": len(valid), **dict(plan.problem_counts())},
                             colors={"valid": VALID_COLOR, **{k: PROBLEM_COLOR for k in plan.problem_counts()}}),
        "invalid_report": dg.MetadataValue.md(reasons_markdown(
            "Held back", ((u.group_key, u.problems) for u in invalid[:SAMPLE_ROWS]), total=len(invalid))),
        "plan": dg.MetadataValue.md(plan_markdown(plan)),
        "units": table(units, [("dataset_key", "string"), ("valid", "bool"), ("meta", "string"), ("problems", "string")]),
    }


def uploaded_files(report: UploadReport) -> dict[str, Any]:
    failed = report.by_status(FileStatus.FAILED)
    rate = report.bytes_sent / report.seconds if report.seconds > 0 else 0.0
    return {
        "dagster/row_count": len(report.files) - len(failed),
        "uploaded": len(report.by_status(FileStatus.UPLOADED)),
        "already_uploaded": len(report.by_status(FileStatus.ALREADY_UPLOADED)),
        "failed": len(failed),
        "bytes_sent": report.bytes_sent,
        "seconds": round(report.seconds, 2),
        "files_per_second": round(len(report.by_status(FileStatus.UPLOADED)) / report.seconds, 2) if report.seconds > 0 else 0.0,
        "mib_per_second": round(rate / 2**20, 3),
        "throughput": f"{human_bytes(rate)}/s",
        "failures": table([{"path": f.relative_path, "error": f.error} for f in failed],
                          [("path", "string"), ("error", "string")]),
    }


def created_units(report: CreationReport, plan: BatchPlan, uploads: UploadReport, *, host: str,
                  collection_id: int) -> dict[str, Any]:
    created, existing = report.by_status(UnitStatus.CREATED), report.by_status(UnitStatus.EXISTING)
    rows = [{"dataset_key": o.dataset_key, "status": o.status, "unit_id": o.unit_id, "error": o.error}
            for o in report.outcomes.values()]
    rows += [{"dataset_key": k, "status": "skipped", "unit_id": None, "error": "; ".join(r)} for k, r in report.skipped]
    rows += [{"dataset_key": k, "status": "held back", "unit_id": None, "error": "; ".join(r)} for k, r in report.held_back]
    return {
        "dagster/row_count": len(created) + len(existing),
        "created": len(created),
        "already_existed": len(existing),
        "failed": len(report.by_status(UnitStatus.FAILED)),
        "key_collisions": len(report.by_status(UnitStatus.COLLIDED)),
        "new_versions": len(report.versions),
        "skipped_upload_failed": len(report.skipped),
        "held_back_invalid": len(plan.invalid_units) + len(report.held_back),
        "reconciled_with_server": report.reconciled,
        "create_requests": report.requests_sent,
        "units_listed_to_reconcile": report.units_listed,
        "collection_api": collection_link(host, collection_id),
        "batch_report": dg.MetadataValue.md(batch_markdown(plan, uploads, report,
                                                           collection_url=collection_url(host, collection_id))),
        **_freshness(plan.newest_mtime_ns, "newest_file_delivered"),
        **_task_figures(report),
        "units": table(rows, [("dataset_key", "string"), ("status", "string"), ("unit_id", "int"), ("error", "string")]),
    }


def _freshness(newest_mtime_ns: int, name: str) -> dict[str, Any]:
    """The batch's newest file and the lag behind it (now minus its time), which operators watch for a sensor
    that fell behind; nothing when no file had a time."""
    if newest_mtime_ns <= 0:
        return {}
    newest = newest_mtime_ns / 1e9
    return {name: dg.MetadataValue.timestamp(newest), "lag_seconds": round(max(time.time() - newest, 0.0), 1)}


def _task_figures(report: CreationReport) -> dict[str, Any]:
    tasks = report.tasks
    if tasks is None:
        return {}
    return {"tasks_created": len(tasks.created), "tasks_existing": len(tasks.existing), "tasks_failed": len(tasks.failed)}


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
