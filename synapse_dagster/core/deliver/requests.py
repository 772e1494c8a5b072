"""Which units can be created: the plan's valid units joined with what their files' uploads returned."""

from __future__ import annotations

from dataclasses import dataclass, field

from synapse_dagster.core.deliver.creation import UnitRequest
from synapse_dagster.core.deliver.upload import FileStatus, FileUpload, UploadReport
from synapse_dagster.core.plan.batch_plan import BatchPlan

Reasons = list[tuple[str, list[str]]]  # (dataset_key, why)


@dataclass
class UnitRequests:
    requests: list[UnitRequest] = field(default_factory=list)
    skipped: Reasons = field(default_factory=list)  # a file did not upload: delivery failed, a re-run retries
    held_back: Reasons = field(default_factory=list)  # the content guard refused a staged copy: fix the data


def unit_requests(plan: BatchPlan, uploads: UploadReport) -> UnitRequests:
    """Create requests for units whose every file was confirmed; the rest are skipped or held back, with reasons.

    The server links a unit's files by the checksum it returned at confirm, so only that checksum is sent.
    """
    out = UnitRequests()
    for unit in plan.valid_units:
        confirmed = {spec: uploads.files.get(f.fingerprint) for spec, f in unit.files.items()}
        broken = [_why(spec, unit.files[spec].relative_path, u) for spec, u in confirmed.items() if not u or not u.checksum]
        if any(u is not None and u.status == FileStatus.REJECTED for u in confirmed.values()):
            out.held_back.append((unit.dataset_key, broken))
        elif broken:
            out.skipped.append((unit.dataset_key, broken))
        else:
            files = {spec: {"checksum": u.checksum, "path": unit.files[spec].relative_path} for spec, u in confirmed.items()}
            out.requests.append(UnitRequest(unit.dataset_key, files, unit.meta))
    return out


def _why(spec: str, path: str, upload: FileUpload | None) -> str:
    """Why a file of the unit is not on the server, naming the file once (screen findings already name it)."""
    error = upload.error if upload is not None and upload.error else "not uploaded"
    return error if error.startswith(f"file {path} ") or error.startswith(f"not sent: file {path} ") \
        else f"file {path} ({spec}): {error}"
