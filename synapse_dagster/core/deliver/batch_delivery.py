"""Delivering a plan's valid units: upload their files, create each unit as soon as its files are confirmed.

One function does it for a whole batch in one process, or for one shard of it on a worker of a cluster: the
exactly-once rules live in the ledger and in Synapse (files confirmed or looked up by SHA1, units reconciled by
dataset key), never in this process's memory, so a shard that is run again after its worker died sends only
what did not land. :func:`shards` cuts a plan into shards as it is read, and :func:`merged` puts their reports
back together.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from synapse_dagster.core.deliver.creation import CreationReport, UnitCreation
from synapse_dagster.core.deliver.ledger import Ledger
from synapse_dagster.core.deliver.requests import ReadyUnits, UnitRequests, unit_requests
from synapse_dagster.core.deliver.progress import Progress
from synapse_dagster.core.deliver.upload import FileStatus, FileUpload, UploadReport, content_screen, upload_files
from synapse_dagster.core.plan.batch_plan import BatchPlan, UnitPlan
from synapse_dagster.core.plan.content import ContentPolicy
from synapse_dagster.core.sources.roots import SourceRoot
from synapse_dagster.core.sources.staging import stage_by_root
from synapse_dagster.core.synapse.bulk_upload import UploadTimeouts


LANDED = (FileStatus.UPLOADED, FileStatus.ALREADY_UPLOADED)  # counted like the files: the total includes both


@dataclass(frozen=True)
class DeliverySettings:
    """How a pipeline delivers, as plain data (a shard's worker gets a copy)."""

    data_collection: int
    target: str  # the Synapse the ledger's records are for
    batch_size: int = 100  # units per create request
    on_collision: str = "skip"
    upload_max_workers: int = 16
    staging_max_bytes: int = 2**30
    content_policy: ContentPolicy = ContentPolicy()
    timeouts: UploadTimeouts = UploadTimeouts()


@dataclass
class Delivered:
    """What became of the files and the units of a plan (or of a shard of it)."""

    uploads: UploadReport
    created: CreationReport
    wanted: UnitRequests = field(default_factory=UnitRequests)


def deliver_plan(client: Any, plan: BatchPlan, roots: Sequence[SourceRoot], ledger: Ledger,
                 settings: DeliverySettings, *, on_progress: Callable[[str], None] | None = None) -> Delivered:
    """Upload the files of ``plan``'s valid units and create the units, each as soon as its files are confirmed.
    ``on_progress`` gets a line (files, bytes, rate, time left) about every 10 s."""
    files = [f for unit in plan.valid_units for f in unit.files.values()]
    progress = Progress(len(files), sum(f.size for f in files))
    failures: dict[str, str] = {}
    ready = ReadyUnits(plan)
    with (tempfile.TemporaryDirectory(prefix="synapse-staging-") as workdir,
          UnitCreation(client, settings.data_collection, ready.keys(), ledger=ledger, target=settings.target,
                       batch=plan.batch, batch_size=settings.batch_size, on_collision=settings.on_collision)
          as creation):

        def slice_done(outcome: list[FileUpload]) -> None:
            creation.offer(ready.arrived(outcome))
            line = progress.advance(len(outcome), sum(u.size for u in outcome if u.status in LANDED))
            if line and on_progress is not None:
                on_progress(line)

        uploads = upload_files(
            client, files, ledger=ledger, target=settings.target,
            stage=stage_by_root(roots, Path(workdir), settings.staging_max_bytes, failures),
            screen=content_screen(plan, settings.content_policy), stage_failures=failures,
            max_workers=settings.upload_max_workers, timeouts=settings.timeouts, on_slice_done=slice_done)
        wanted = unit_requests(plan, uploads)
        creation.offer(wanted.requests)  # every unit the upload allows, whatever the slices already offered
        return Delivered(uploads, creation.finish(), wanted)


@dataclass(frozen=True)
class Shard:
    plan: BatchPlan
    after_the_others: bool = False  # its units share files with earlier shards: deliver it once they are done


def shards(plan: BatchPlan, units_per_shard: int) -> Iterator[Shard]:
    """``plan``'s valid units in shards of at most ``units_per_shard``, read as they are needed (a batch of a
    million units is never in memory at once). Each shard is a small plan of its own, with the batch's specs.

    Two shards delivered at once must not send the same file (each would upload it): a unit with a file an
    earlier unit has goes to a last shard, delivered after the others, when that file is already confirmed. The
    files seen are remembered by hash (about 60 bytes a file)."""
    seen: set[int] = set()
    chunk: list[UnitPlan] = []
    later: list[UnitPlan] = []
    for unit in plan.valid_units:
        hashes = [hash(f.fingerprint) for f in unit.files.values()]
        if any(h in seen for h in hashes):
            later.append(unit)
            continue
        seen.update(hashes)
        chunk.append(unit)
        if len(chunk) >= units_per_shard:
            yield Shard(_shard(plan, chunk))
            chunk = []
    if chunk:
        yield Shard(_shard(plan, chunk))
    if later:
        yield Shard(_shard(plan, later), after_the_others=True)


def _shard(plan: BatchPlan, units: list[UnitPlan]) -> BatchPlan:
    return replace(plan, units=units, file_issues=[], sheet_rows_without_unit=[], sheet_duplicate_keys=[],
                   sheet_notes=[], units_without_sheet_row=[])


def merged(parts: Iterable[Delivered], seconds: float) -> Delivered:
    """One report from the shards' reports (each file and unit is in exactly one shard)."""
    uploads, created, wanted = UploadReport(files={}, seconds=seconds), CreationReport(), UnitRequests()
    for part in parts:
        uploads.files.update(part.uploads.files)
        created.outcomes.update(part.created.outcomes)
        created.versions.update(part.created.versions)
        created.reconciled |= part.created.reconciled
        created.requests_sent += part.created.requests_sent
        created.units_listed += part.created.units_listed
        created.collision_policy = part.created.collision_policy
        wanted.requests += part.wanted.requests
        wanted.skipped += part.wanted.skipped
        wanted.held_back += part.wanted.held_back
    return Delivered(uploads, created, wanted)
