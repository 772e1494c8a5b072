"""A batch's delivery fanned out over a Ray cluster: one task per shard of the plan (``engine: ray``).

The run's step stays the driver: it holds the batch's delivery claim, cuts the plan into shards as it reads it,
keeps a bounded number of them in flight and merges their reports. Each task delivers its shard with the same
core function as a local run (:func:`~synapse_dagster.core.deliver.batch_delivery.deliver_plan`), against the
shared ledger and Synapse, so a task that Ray runs again after its worker died sends only what did not land.

Nothing secret travels through Ray: a worker reads ``SYNAPSE_ACCESS_TOKEN`` (and ``SYNAPSE_DAGSTER_LEDGER_URL``
when the ledger is a database) from its own environment, and resolves the pipeline's sources itself, so remote
sources are staged on the worker that uploads them. Local sources must be on a path every worker sees.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import dagster as dg

from synapse_dagster.config.models import PipelineConfig
from synapse_dagster.core.deliver.batch_delivery import Delivered, DeliverySettings, deliver_plan, merged, shards
from synapse_dagster.core.deliver.ledger import Ledger
from synapse_dagster.core.plan.batch_plan import BatchPlan
from synapse_dagster.core.redaction import redact
from synapse_dagster.defs.resources import LEDGER_URL_ENV, IngestStateResource, SourcesResource, SynapseResource, ledger_file

RAY_RESOURCE = "ray_cluster"


@dataclass(frozen=True)
class ShardWork:
    """One Ray task's input: plain data, no token, no password."""

    index: int
    pipeline: PipelineConfig
    plan: BatchPlan
    settings: DeliverySettings
    base_dir: str  # absolute: a worker's working directory is its own
    synapse: dict[str, Any]  # SynapseResource fields without the token
    ledger_file: str | None  # the SQLite ledger; None: the worker's SYNAPSE_DAGSTER_LEDGER_URL

    def ledger(self) -> Ledger:
        if self.ledger_file is not None:
            return Ledger(self.ledger_file)
        url = os.environ.get(LEDGER_URL_ENV)
        if not url:
            raise RuntimeError(f"this Ray worker has no {LEDGER_URL_ENV}; set it on every worker to the ledger "
                               "database the runs use")
        return Ledger(url)


def deliver_shard(work: ShardWork) -> Delivered:
    """Runs on a Ray worker: the shard's files and units, through this worker's own Synapse client."""
    synapse = SynapseResource(**work.synapse)
    roots = SourcesResource(base_dir=work.base_dir).roots(work.pipeline, synapse)
    with work.ledger() as ledger:
        return deliver_plan(synapse.client(), work.plan, roots, ledger, work.settings)


def deliver_on_ray(step: Any, plan: BatchPlan, settings: DeliverySettings) -> Delivered:
    """Deliver ``plan`` in shards on the cluster the ``ray_cluster`` resource connected to; a shard that still
    failed after its retries fails the step once the other shards are done (a re-run sends only what is left)."""
    import ray

    engine, context = step.pipeline.engine, step.context
    task = ray.remote(deliver_shard).options(max_retries=engine.max_shard_retries, retry_exceptions=False,
                                             name=f"deliver_shard {step.pipeline.name}:{step.batch}")
    started, template = time.monotonic(), _template(step, settings)
    pending: dict[Any, int] = {}
    parts: list[Delivered] = []
    failed: dict[int, str] = {}

    def settle(ready: list[Any]) -> None:
        for ref in ready:
            index = pending.pop(ref)
            try:
                parts.append(ray.get(ref))
            except Exception as exc:  # the shard's own error, or its worker died past its retries
                failed[index] = redact(_cause(exc))
        context.log.info(_progress_line(parts, failed, len(pending), time.monotonic() - started))

    for index, shard in enumerate(shards(plan, engine.units_per_shard)):
        while pending and (len(pending) >= engine.max_shards_in_flight or shard.after_the_others):
            settle(ray.wait(list(pending), num_returns=1)[0])
        pending[task.remote(replace(template, index=index, plan=shard.plan))] = index
    while pending:
        settle(ray.wait(list(pending), num_returns=1)[0])
    if failed:
        raise dg.Failure(_failed_shards(failed), allow_retries=True)
    return merged(parts, time.monotonic() - started)


def _template(step: Any, settings: DeliverySettings) -> ShardWork:
    synapse: SynapseResource = step.synapse
    state: IngestStateResource = step.context.resources.ingest_state
    sources: SourcesResource = step.context.resources.sources
    fields = {"host": synapse.credentials().host, "tenant": synapse.tenant, "config_file": synapse.config_file,
              "read_timeout_s": synapse.read_timeout_s, "upload_timeout_s": synapse.upload_timeout_s,
              "max_concurrent_requests": synapse.api_concurrency()}
    ledger = None if state.ledger_url else str(ledger_file(state.state_dir).resolve())
    return ShardWork(0, step.pipeline, BatchPlan(step.batch, [], []), settings, str(Path(sources.base_dir).resolve()),
                     fields, ledger)


def _cause(exc: Exception) -> str:
    cause = getattr(exc, "cause", None) or exc  # a RayTaskError carries the task's own exception
    return f"{type(cause).__name__}: {cause}".splitlines()[0][:500]


def _progress_line(parts: list[Delivered], failed: dict[int, str], running: int, seconds: float) -> str:
    files = sum(len(p.uploads.files) for p in parts)
    units = sum(len(p.created.outcomes) for p in parts)
    return (f"shards done: {len(parts)}, failed: {len(failed)}, running: {running}; {files:,} files and "
            f"{units:,} units settled in {seconds:,.0f} s ({files / max(seconds, 1e-9):,.1f} files/s)")


def _failed_shards(failed: dict[int, str]) -> str:
    causes: dict[str, list[int]] = {}
    for index, cause in sorted(failed.items()):
        causes.setdefault(cause, []).append(index)
    lines = [f"shard(s) {', '.join(str(i + 1) for i in shards_)}: {cause}" for cause, shards_ in causes.items()]
    return (f"{len(failed)} shard(s) of the batch failed on the Ray cluster after their retries; the others "
            "delivered, and a re-run of the batch sends only what did not land. " + "; ".join(lines))
