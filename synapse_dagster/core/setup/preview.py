"""The first units of a source, planned exactly as a run would plan them, from a bounded sample of its listing.

``init`` shows these before it writes anything: what the pattern detection saw, which files make each unit, the
meta each unit gets from the sheet, sidecars and name patterns, and what holds a unit back. Only the first
``sample_files`` files are listed (a million-file source previews as fast as a small one), so a unit cut at the
sample's edge can look incomplete; the preview says when the sample stopped short.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from synapse_dagster.core.batches.folders import list_existing_batches
from synapse_dagster.core.meta.sheet_files import SheetSettings, load_sheet, reserved_paths
from synapse_dagster.core.meta.sheets import MetadataTable
from synapse_dagster.core.organize.detection import Detection, choose_pattern
from synapse_dagster.core.organize.grouping import Organization, group_files
from synapse_dagster.core.organize.layouts import Pattern, SpecNames
from synapse_dagster.core.organize.specs import CollectionSpecs
from synapse_dagster.core.plan.batch_plan import BatchPlan, FileAccess, PlanSettings, UnitPlan, plan_batch
from synapse_dagster.core.setup.collections import required_meta_fields
from synapse_dagster.core.sources.files import SourceError, SourceFile
from synapse_dagster.core.sources.roots import SourceRoot, batch_roots, list_roots, read_small
from synapse_dagster.core.tables.row_table import Spill

SAMPLE_FILES = 2000
KEYS_MODE_BATCH = "BATCH"  # keys mode: stands in for the key each run is given, in the previewed dataset keys
# Names people give JSON/YAML meta beside their data: one per unit folder, or one per file stem.
FOLDER_SIDECARS = ("meta.yaml", "meta.yml", "meta.json", "metadata.yaml", "metadata.yml", "metadata.json")
STEM_SIDECARS = (".meta.json", ".meta.yaml", ".meta.yml")


@dataclass(frozen=True)
class PreviewSettings:
    """The pipeline's choices that shape its units (the wizard's draft, as the core takes it)."""

    plan: PlanSettings
    sheet: SheetSettings
    per_batch_folder: bool
    pattern: Pattern | None = None  # None: detected
    spec_aliases: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    sidecars: tuple[str, ...] = ()
    ready_marker: str | None = None


@dataclass
class Preview:
    batch: str
    batches: list[str]  # every batch folder found (folders mode), or just ``batch``
    listed: int
    sample_full: bool  # the listing went on past the sample
    detection: Detection
    plan: BatchPlan
    sheet: MetadataTable | None
    required_fields: list[str]
    sidecar_like: Counter[str] = field(default_factory=Counter)  # sidecar entry ('meta.yaml', '*.meta.json') -> files

    @property
    def sampled(self) -> str:
        """What was sampled, for a sentence: a batch folder, or the whole source (keys mode)."""
        return f"batch '{self.batch}'" if self.batches else "the source"

    def first_units(self, n: int) -> list[UnitPlan]:
        return list(islice(iter(self.plan.units), n))

    def first_held_back(self, n: int, *, after: int) -> list[UnitPlan]:
        """Held-back units past the first ``after``: what a user most needs to see before they run."""
        return list(islice((u for i, u in enumerate(self.plan.units) if i >= after and not u.is_valid), n))

    def missing_fields(self) -> Counter[str]:
        """Required meta fields, by how many sampled units lack them (whatever else holds a unit back)."""
        return Counter(f for u in self.plan.units for f in self.required_fields if f not in u.meta)

    def key_column_candidates(self) -> list[tuple[str, int]]:
        """Sheet columns whose values name the sampled units, best first: the cure when units find no row."""
        if self.sheet is None:
            return []
        keys = {u.group_key.rsplit("/", 1)[-1] for u in self.plan.units}
        rows = list(self.sheet.rows.values())
        scored = [(c, len(keys & {str(r.get(c)) for r in rows if r.get(c) is not None})) for c in self.sheet.columns]
        return sorted([s for s in scored if s[1]], key=lambda s: -s[1])


def batch_to_preview(roots: Sequence[SourceRoot], per_batch_folder: bool, batch: str | None) -> tuple[str, list[str]]:
    """The batch named, or the first batch folder; in keys mode the whole source is the batch."""
    if not per_batch_folder:
        return batch or KEYS_MODE_BATCH, []
    found = list_existing_batches(roots)
    if batch is not None:
        return batch, found
    if not found:
        raise SourceError("the source has no batch folder: in folders mode every sub-folder is one batch; put the "
                          "files of a batch in a sub-folder, or choose keys mode (the whole source is one batch)")
    return found[0], found


def preview(roots: Sequence[SourceRoot], specs: CollectionSpecs, settings: PreviewSettings, *,
            storage: Callable[[], Mapping[str, Any]] | None = None, batch: str | None = None,
            sample_files: int = SAMPLE_FILES) -> Preview:
    """List a sample, detect the pattern, group and plan it, as source_inventory … validated_meta do."""
    name, batches = batch_to_preview(roots, settings.per_batch_folder, batch)
    listed = list(islice(list_roots(batch_roots(roots, name, per_batch_folder=settings.per_batch_folder)),
                         sample_files + 1))
    files, full = listed[:sample_files], len(listed) > sample_files
    spill = Spill()
    detection = choose_pattern(settings.pattern, files, SpecNames(specs, settings.spec_aliases))
    organization = Organization(detection.pattern, spec_aliases=settings.spec_aliases, sidecars=settings.sidecars)
    reserved = reserved_paths(settings.sheet, files, settings.ready_marker)
    grouping = group_files(files, specs, organization, reserved=reserved, spill=spill)
    grouping.detection = detection
    sheet = load_sheet(settings.sheet, files, roots, storage, storage_label="the storage")
    plan = plan_batch(grouping, specs, name, settings.plan, sheet=sheet,
                      access=FileAccess(read_bytes=lambda f: read_small(f, roots)), spill=spill)
    return Preview(name, batches, len(files), full, detection, plan, sheet, required_meta_fields(specs),
                   Counter(e for e in map(sidecar_entry, files) if e and e not in settings.sidecars))


def sidecar_entry(file: SourceFile) -> str | None:
    """The ``metadata.sidecars`` entry that would read ``file`` as a sidecar, if its name looks like one."""
    name = file.name.lower()
    if name in FOLDER_SIDECARS and "/" in file.relative_path:
        return name
    suffix = next((s for s in STEM_SIDECARS if name.endswith(s) and len(name) > len(s)), None)
    return f"*{suffix}" if suffix else None
