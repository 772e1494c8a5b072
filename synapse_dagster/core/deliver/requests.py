"""Which units can be created: the plan's valid units joined with what their files' uploads returned."""

from __future__ import annotations

from synapse_dagster.core.deliver.creation import UnitRequest
from synapse_dagster.core.deliver.upload import UploadReport
from synapse_dagster.core.plan.batch_plan import BatchPlan


def unit_requests(plan: BatchPlan, uploads: UploadReport) -> tuple[list[UnitRequest], list[tuple[str, list[str]]]]:
    """Create requests for units whose every file was confirmed, and ``(dataset_key, reasons)`` for the rest.

    The server links a unit's files by the checksum it returned at confirm, so only that checksum is sent.
    """
    requests, skipped = [], []
    for unit in plan.valid_units:
        confirmed = {spec: uploads.files.get(f.fingerprint) for spec, f in unit.files.items()}
        broken = [f"{spec}: {u.error if u else 'not uploaded'}" for spec, u in confirmed.items() if not u or not u.checksum]
        if broken:
            skipped.append((unit.dataset_key, broken))
            continue
        files = {spec: {"checksum": u.checksum, "path": unit.files[spec].relative_path} for spec, u in confirmed.items()}
        requests.append(UnitRequest(unit.dataset_key, files, unit.meta))
    return requests, skipped
