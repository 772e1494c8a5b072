"""Which folders make up one batch of a pipeline, and listing them.

In ``folders`` mode a batch is a sub-folder of each source (``<source>/<batch>``); in ``keys`` mode a
batch key is only a label and the whole source is read. Both are checked before listing so a typo
gives a message naming the pipeline, the spec and the path instead of an empty batch.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from synapse_dagster.core.inventory import SourceError, SourceFile, list_local, resolve_local_source
from synapse_dagster.core.specs import CollectionSpecs
from synapse_dagster.partitions import check_batch_key
from synapse_dagster.pipeline_config import BatchMode, PipelineConfig


@dataclass(frozen=True)
class BatchSource:
    spec: str | None  # None in single-path mode
    root: Path
    recursive: bool


def batch_sources(pipeline: PipelineConfig, batch: str, base_dir: Path) -> list[BatchSource]:
    check_batch_key(batch)
    sources = []
    for spec, source in pipeline.source_paths().items():
        label = f"pipeline '{pipeline.name}'" + (f", spec '{spec}'" if spec else "")
        try:
            root = resolve_local_source(source.path, base_dir)
        except SourceError as exc:
            raise SourceError(f"{label}: {exc}") from None
        if pipeline.batches.mode is BatchMode.FOLDERS:
            root = root / batch
            if not root.is_dir():
                raise SourceError(
                    f"{label}: batch '{batch}' has no folder {root}; batches of this pipeline are the sub-folders "
                    f"of {source.path}"
                )
        sources.append(BatchSource(spec=spec, root=root, recursive=source.is_recursive))
    return sources


def check_multi_path_specs(pipeline: PipelineConfig, specs: CollectionSpecs) -> None:
    if pipeline.assets is None:
        return
    unknown = sorted(set(pipeline.assets) - {s.name for s in specs.specs})
    if unknown:
        raise SourceError(
            f"pipeline '{pipeline.name}': assets name spec(s) {unknown} that data collection {specs.collection_id} "
            f"does not define (it has {[s.name for s in specs.specs]})"
        )
    missing = [s.name for s in specs.required if s.name not in pipeline.assets]
    if missing:
        raise SourceError(f"pipeline '{pipeline.name}': required spec(s) {missing} have no source under 'assets'")


def list_batch(sources: list[BatchSource]) -> Iterator[SourceFile]:
    for source in sources:
        yield from list_local(source.root, recursive=source.recursive, source_spec=source.spec)


def list_existing_batches(pipeline: PipelineConfig, base_dir: Path) -> list[str]:
    """Batch folders present in every source of a ``folders``-mode pipeline, sorted (for registering partitions)."""
    if pipeline.batches.mode is not BatchMode.FOLDERS:
        return []
    found: set[str] | None = None
    for source in pipeline.source_paths().values():
        root = resolve_local_source(source.path, base_dir)
        names = {p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")}
        found = names if found is None else found & names
    valid = []
    for name in sorted(found or ()):
        try:
            valid.append(check_batch_key(name))
        except ValueError:
            continue
    return valid
