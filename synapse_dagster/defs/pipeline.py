"""One pipeline of the pipeline file as Dagster definitions: its six assets, its ingest job and its sensor.

The assets' bodies are the small functions of :mod:`.assets`; this module only wires them: keys, inputs,
partitions, pools, kinds, owners and tags, the descriptions of :mod:`.descriptions` and the checks of :mod:`.checks`.
"""


from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import dagster as dg

from synapse_dagster.config.models import PipelineConfig
from synapse_dagster.defs import assets
from synapse_dagster.defs import descriptions as describe
from synapse_dagster.defs.checks import check_results, check_specs
from synapse_dagster.defs.partitions import batches_partitions
from synapse_dagster.defs.ray_delivery import RAY_RESOURCE
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
    AssetStep("collection_specs", assets.collection_specs, describe.collection_specs,
              kinds=frozenset({"synapse"}), pool=API_POOL),
    AssetStep("source_inventory", assets.source_inventory, describe.source_inventory, ("collection_specs",)),
    AssetStep("grouped_data_units", assets.grouped_data_units, describe.grouped_data_units,
              ("collection_specs", "source_inventory")),
    AssetStep("validated_meta", assets.validated_meta, describe.validated_meta,
              ("collection_specs", "source_inventory", "grouped_data_units")),
)
# The last two assets are one step (assets.delivery), so that units are created while later files upload.
DELIVERY_STEP = "delivery"
DELIVERED: tuple[tuple[str, Callable[[PipelineConfig], str]], ...] = (
    ("uploaded_files", describe.uploaded_files),
    ("created_units", describe.created_units),
)
ASSET_NAMES = (*(step.name for step in STEPS), *(name for name, _ in DELIVERED))


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
        owners=list(pipeline.owners),
        tags=dict(pipeline.tags),
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


def build_delivery(pipeline: PipelineConfig) -> dg.AssetsDefinition:
    """``uploaded_files`` → ``created_units`` as one multi-asset: two assets in the graph, one step in a run."""
    uploaded, created, planned = (asset_key(pipeline, name) for name in ("uploaded_files", "created_units", "validated_meta"))
    descriptions = {name: describe(pipeline) for name, describe in DELIVERED}

    @dg.multi_asset(
        name=f"{pipeline.name}__{DELIVERY_STEP}",
        outs={name: dg.AssetOut(key=asset_key(pipeline, name), description=descriptions[name], kinds={"synapse"},
                                owners=list(pipeline.owners), tags=dict(pipeline.tags), is_required=True)
              for name in descriptions},
        ins={"validated_meta": dg.AssetIn(planned)},
        internal_asset_deps={"uploaded_files": {planned}, "created_units": {planned, uploaded}},
        check_specs=[*check_specs("uploaded_files", uploaded), *check_specs("created_units", created)],
        partitions_def=batches_partitions(pipeline.name),
        group_name=pipeline.name,
        pool=API_POOL,
        retry_policy=DELIVERY_RETRIES,
        required_resource_keys=set(RESOURCE_KEYS) | ({RAY_RESOURCE} if pipeline.engine.kind == "ray" else set()),
    )
    def compute(context: dg.AssetExecutionContext, validated_meta: Any) -> Iterator[Any]:
        outputs = assets.delivery(assets.Step(context, pipeline), validated_meta)
        yield from outputs
        for output, key in zip(outputs, (uploaded, created)):
            yield from check_results(pipeline, str(output.output_name), key, output.value,
                                     {"validated_meta": validated_meta})

    return compute


def build_pipeline_definitions(pipeline: PipelineConfig) -> dg.Definitions:
    job = dg.define_asset_job(
        ingest_job_name(pipeline),
        selection=dg.AssetSelection.groups(pipeline.name),
        description=describe.ingest_job(pipeline),
        # the run queue's limits key on the synapse/ tags (dagster.yaml: runs per pipeline, ingest runs in all);
        # the pipeline file's own tags go on every run too, so runs filter by them as assets do
        tags={**pipeline.tags, "synapse/data_collection": str(pipeline.data_collection),
              "synapse/pipeline": pipeline.name, "synapse/kind": "ingest"},
    )
    sensor = build_batch_sensor(pipeline, job)
    return dg.Definitions(assets=[*(build_asset(pipeline, step) for step in STEPS), build_delivery(pipeline)], jobs=[job],
                          sensors=[sensor] if sensor is not None else [])
