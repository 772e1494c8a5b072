"""Which units can be created: the plan's valid units joined with what their files' uploads returned."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from synapse_dagster.core.deliver.creation import UnitRequest
from synapse_dagster.core.deliver.upload import FileStatus, FileUpload, UploadReport
from synapse_dagster.core.plan.batch_plan import BatchPlan, UnitPlan

Reasons = list[tuple[str, list[str]]]  # (dataset_key, why)


@dataclass
class UnitRequests:
    requests: list[UnitRequest] = field(default_factory=list)
    skipped: Reasons = field(default_factory=list)  # a file did not upload: delivery failed, a re-run retries
    held_back: Reasons = field(default_factory=list)  # the content guard refused a staged copy: fix the data


def unit_requests(plan: BatchPlan, uploads: UploadReport) -> UnitRequests:
    """Create requests for units whose every file was confirmed; the rest are skipped or held back, with reasons."""
    out = UnitRequests()
    for unit in plan.valid_units:
        confirmed = {spec: uploads.files.get(f.fingerprint) for spec, f in unit.files.items()}
        broken = [_why(spec, unit.files[spec].relative_path, u) for spec, u in confirmed.items() if not u or not u.checksum]
        if any(u is not None and u.status == FileStatus.REJECTED for u in confirmed.values()):
            out.held_back.append((unit.dataset_key, broken))
        elif broken:
            out.skipped.append((unit.dataset_key, broken))
        else:
            out.requests.append(_request(unit.dataset_key, _file_refs(unit), unit.meta, uploads.files))
    return out


def _file_refs(unit: UnitPlan) -> dict[str, tuple[str, str]]:
    """spec -> (fingerprint, relative path): what a request needs of a unit's files."""
    return {spec: (f.fingerprint, f.relative_path) for spec, f in unit.files.items()}


def _request(key: str, files: dict[str, tuple[str, str]], meta: dict[str, Any],
             uploads: Mapping[str, FileUpload]) -> UnitRequest:
    """The server links a unit's files by the checksum it returned at confirm, so only that checksum is sent."""
    return UnitRequest(key, {spec: {"checksum": uploads[fp].checksum or "", "path": path}
                             for spec, (fp, path) in files.items()}, meta)


class ReadyUnits:
    """Which units can be created as upload outcomes arrive: a unit is ready once every one of its files is
    confirmed, so its creation need not wait for the rest of the batch's upload."""

    def __init__(self, plan: BatchPlan) -> None:
        self.units: list[tuple[str, dict[str, tuple[str, str]], dict[str, Any]]] = []
        self.waiting: dict[str, list[int]] = {}  # fingerprint -> the units that wait for it
        self.missing: list[int] = []  # per unit, how many of its files have no outcome yet
        self.uploads: dict[str, FileUpload] = {}
        for index, unit in enumerate(plan.valid_units):
            files = _file_refs(unit)
            self.units.append((unit.dataset_key, files, unit.meta))
            fingerprints = {fp for fp, _ in files.values()}
            self.missing.append(len(fingerprints))
            for fp in fingerprints:
                self.waiting.setdefault(fp, []).append(index)

    def keys(self) -> list[str]:
        return [key for key, _, _ in self.units]

    def arrived(self, outcome: list[FileUpload]) -> list[UnitRequest]:
        """The units that ``outcome`` completes, as requests (a unit with a file that did not land is not one)."""
        ready = []
        for upload in outcome:
            self.uploads[upload.fingerprint] = upload
            for index in self.waiting.pop(upload.fingerprint, ()):
                self.missing[index] -= 1
                key, files, meta = self.units[index]
                if self.missing[index] == 0 and all(self.uploads[fp].checksum for fp, _ in files.values()):
                    ready.append(_request(key, files, meta, self.uploads))
        return ready


def _why(spec: str, path: str, upload: FileUpload | None) -> str:
    """Why a file of the unit is not on the server, naming the file once (screen findings already name it)."""
    error = upload.error if upload is not None and upload.error else "not uploaded"
    return error if error.startswith(f"file {path} ") or error.startswith(f"not sent: file {path} ") \
        else f"file {path} ({spec}): {error}"
