"""One job per pipeline: the whole lineage graph for one batch."""

from __future__ import annotations

import dagster as dg

from synapse_dagster.pipeline_config import PipelineConfig


def ingest_job_name(pipeline: PipelineConfig) -> str:
    return f"{pipeline.name}_ingest"


def build_ingest_job(pipeline: PipelineConfig) -> dg.UnresolvedAssetJobDefinition:
    return dg.define_asset_job(
        ingest_job_name(pipeline),
        selection=dg.AssetSelection.groups(pipeline.name),
        description=f"Ingest one batch into data collection {pipeline.data_collection}.",
        tags={"synapse/data_collection": str(pipeline.data_collection)},
    )
