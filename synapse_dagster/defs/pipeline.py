"""One pipeline of the pipeline file as Dagster definitions: its six assets, its ingest job and its sensor.

The assets' bodies are the small functions of :mod:`.assets`; this module only wires them: keys, inputs,
partitions, pools, kinds, descriptions and the checks of :mod:`.checks`.
"""


from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import dagster as dg

from synapse_dagster.config.models import PipelineConfig
from synapse_dagster.defs import assets
from synapse_dagster.defs.checks import check_results, check_specs
from synapse_dagster.defs.partitions import batches_partitions
from synapse_dagster.defs.sensors import build_batch_sensor

RESOURCE_KEYS = frozenset({"synapse", "ingest_state", "sources"})
# Delivering steps may be re-run after an unexpected error: every write they make is looked up before it is sent
# again. Errors that are the user's to fix are raised with allow_retries=False (assets.Step.failing_clearly).
DELIVERY_RETRIES = dg.RetryPolicy(max_retries=2, delay=10, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)


@dataclass(frozen=True)
class AssetStep:
    name: str
    compute: Callable[..., dg.Output]
    description: Callable[[PipelineConfig], str]
    inputs: tuple[str, ...] = ()
    kinds: frozenset[str] = frozenset({"python"})
    pool: str | None = None
    retry_policy: dg.RetryPolicy | None = None


# Every step that calls the Synapse API holds a slot of this pool, so API concurrency across runs is at most the
# pool's limit times each process's limiter (SynapseResource.max_concurrent_requests).
API_POOL = "synapse_api"

STEPS: tuple[AssetStep, ...] = (
    AssetStep("collection_specs", assets.collection_specs,
              lambda p: f"File specifications and meta schema of data collection {p.data_collection}, fetched from Synapse.",
              kinds=frozenset({"synapse"}), pool=API_POOL),
    AssetStep("source_inventory", assets.source_inventory,
              lambda p: "Every file of the batch with size and modification time; system junk is marked, not dropped.",
              ("collection_specs",)),
    AssetStep("grouped_data_units", assets.grouped_data_units,
              lambda p: "Files grouped into data units by the batch's directory pattern (detected or set) and mapped "
              "to specs; every file is in one unit or in the report.",
              ("collection_specs", "source_inventory")),
    AssetStep("validated_meta", assets.validated_meta,
              lambda p: "The batch's reviewed plan: each unit's meta merged from its sources with provenance, coerced "
              "and validated against the collection's meta schema; incomplete units, invalid meta, unsafe or oversized "
              "files hold their unit back. Materializing up to here is a dry run: nothing is written to Synapse.",
              ("collection_specs", "source_inventory", "grouped_data_units")),
    AssetStep("uploaded_files", assets.uploaded_files,
              lambda p: "Files of valid units uploaded through presigned URLs in parallel; files already confirmed "
              "on this Synapse are not sent again.",
              ("validated_meta",), frozenset({"synapse"}), API_POOL, DELIVERY_RETRIES),
    AssetStep("created_units", assets.created_units,
              lambda p: f"Data units created in data collection {p.data_collection}, in batches of "
              f"{p.creating_data_unit_batch_size}, once per dataset_key however often the batch runs.",
              ("validated_meta", "uploaded_files"), frozenset({"synapse"}), API_POOL, DELIVERY_RETRIES),
)
ASSET_NAMES = tuple(step.name for step in STEPS)


def asset_key(pipeline: PipelineConfig, name: str) -> dg.AssetKey:
    return dg.AssetKey([pipeline.name, name])


def ingest_job_name(pipeline: PipelineConfig) -> str:
    return f"{pipeline.name}_ingest"


def build_asset(pipeline: PipelineConfig, step: AssetStep) -> dg.AssetsDefinition:
    key = asset_key(pipeline, step.name)

    @dg.asset(
        key=key,
        ins={name: dg.AssetIn(asset_key(pipeline, name)) for name in step.inputs},
        check_specs=check_specs(step.name, key),
        partitions_def=batches_partitions(pipeline.name),
        group_name=pipeline.name,
        description=step.description(pipeline),
        kinds=set(step.kinds),
        pool=step.pool,
        retry_policy=step.retry_policy,
        required_resource_keys=set(RESOURCE_KEYS),
    )
    def compute(context: dg.AssetExecutionContext, **inputs: Any) -> Iterator[Any]:
        output = step.compute(assets.Step(context, pipeline), **inputs)
        yield output
        yield from check_results(pipeline, step.name, key, output.value, inputs)

    return compute


def build_pipeline_definitions(pipeline: PipelineConfig) -> dg.Definitions:
    job = dg.define_asset_job(
        ingest_job_name(pipeline),
        selection=dg.AssetSelection.groups(pipeline.name),
        description=f"Ingest one batch into data collection {pipeline.data_collection}.",
        tags={"synapse/data_collection": str(pipeline.data_collection)},
    )
    sensor = build_batch_sensor(pipeline, job)
    return dg.Definitions(assets=[build_asset(pipeline, step) for step in STEPS], jobs=[job],
                          sensors=[sensor] if sensor is not None else [])
