"""What each asset does for *this* pipeline, as its description in the UI: the collection, the sources, the pattern,
where meta comes from and where files go, read from the pipeline file, so that a reader of the asset graph needs
no second window on the YAML."""

from __future__ import annotations

from synapse_dagster.config.models import PipelineConfig
from synapse_dagster.core.organize.layouts import Pattern
from synapse_dagster.core.redaction import redact


def collection_specs(p: PipelineConfig) -> str:
    return _with_pipeline(p, f"File specifications and meta schema of data collection {p.data_collection}, fetched "
                          "from Synapse at the start of every run (a spec added in Synapse counts from the next batch).")


def source_inventory(p: PipelineConfig) -> str:
    return _with_pipeline(p, f"Every file of the batch below {_sources(p)}, with size and modification time; system "
                          "junk and unsafe names are marked, not dropped.")


def grouped_data_units(p: PipelineConfig) -> str:
    how = ("detected from a sample of each batch (the evidence is in the materialization)"
           if p.pattern is Pattern.AUTO else f"'{p.pattern.value}', as the pipeline file sets")
    return _with_pipeline(p, f"Files grouped into data units by the directory pattern {how}, and mapped to the "
                          "collection's specs; every file is in one unit or in the report.")


def validated_meta(p: PipelineConfig) -> str:
    meta = p.metadata
    sources = ", ".join(meta.precedence)
    return _with_pipeline(p, f"The batch's reviewed plan: each unit's meta merged from {sources} (a later one wins), "
                          "coerced and validated against the collection's meta schema. Incomplete units, invalid "
                          f"meta, unsafe files and files over {p.max_file_size_mb} MB are held back. Materializing "
                          "up to here is a dry run: nothing is written to Synapse.")


def uploaded_files(p: PipelineConfig) -> str:
    return _with_pipeline(p, f"Files of valid units uploaded to storage {p.storage} through presigned URLs, "
                          f"{p.upload_max_workers} at a time; a file already confirmed on this Synapse is not sent "
                          "again.")


def created_units(p: PipelineConfig) -> str:
    tasks = f", each with a task in project {p.project}" if p.project else ""
    return _with_pipeline(p, f"Data units created in data collection {p.data_collection}{tasks}, in batches of "
                          f"{p.creating_data_unit_batch_size} as soon as their files are confirmed; once per "
                          f"dataset_key ('{p.dataset_key_template}') however often the batch runs.")


def ingest_job(p: PipelineConfig) -> str:
    return _with_pipeline(p, f"Ingest one batch into data collection {p.data_collection}.")


def _sources(p: PipelineConfig) -> str:
    if p.source is not None:
        return redact(f"'{p.source.path}'")
    return redact(", ".join(f"'{source.path}' (spec {spec})" for spec, source in p.source_paths().items()))


def _with_pipeline(p: PipelineConfig, text: str) -> str:
    """The pipeline file's own ``description`` first, when it has one."""
    return f"{p.description.strip()}\n\n{text}" if p.description and p.description.strip() else text
