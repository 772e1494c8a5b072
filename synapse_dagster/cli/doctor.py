"""``synapse-dagster doctor``: what a run needs, checked in the order a run meets it, one line per check.

The checks that need no Dagster are in :mod:`synapse_dagster.core.health`; this module adds the pipeline file, the
Dagster instance and the pipelines' settings, and decides what is skipped when a check it depends on failed.
Synapse is reached through the run's own :class:`SynapseResource`, so the doctor asks the way a run asks.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from synapse_dagster.cli.instance_check import NAME as INSTANCE, instance_check
from synapse_dagster.config.loading import PipelineConfigError, load_pipeline_file, pipeline_file_path
from synapse_dagster.config.models import PipelineConfig, PipelineFile
from synapse_dagster.core.health.checks import Check, guarded, one_line
from synapse_dagster.core.health.ledger import ledger_check
from synapse_dagster.core.health.lookups import collection_check, project_check, storage_check
from synapse_dagster.core.health.ray import RAY_ADDRESS_ENV, ray_checks
from synapse_dagster.core.health.sources import source_check
from synapse_dagster.core.health.synapse import sdk_version, synapse_checks
from synapse_dagster.core.synapse.errors import LookupTarget
from synapse_dagster.defs.resources import LEDGER_URL_ENV, SynapseResource


def doctor(pipelines: str | None) -> Iterator[Check]:
    """Every check as it finishes, so a slow one shows where the doctor is."""
    loaded, first = pipeline_file_check(pipelines)
    yield first
    yield guarded("synapse sdk", sdk_version)
    synapse = SynapseResource()
    checks, creds = synapse_checks(synapse.credentials, synapse.client)
    yield from checks
    yield guarded(INSTANCE, instance_check)
    url = os.environ.get(LEDGER_URL_ENV)
    yield ledger_check(url, LEDGER_URL_ENV) if url else Check.skip(
        "ledger", f"{LEDGER_URL_ENV} is not set: each host keeps the ledger in a SQLite file in its state folder")
    if loaded is None:
        yield Check.skip("pipelines", "no valid pipeline file (above): data collections, storages, projects, "
                         "sources and Ray not checked")
        return
    wanting_ray = [p.name for p in loaded[0].pipelines if p.engine.kind == "ray"]
    if wanting_ray:
        yield from ray_checks(os.environ.get(RAY_ADDRESS_ENV), wanting_ray)
    for index, pipeline in enumerate(loaded[0].pipelines):
        yield from pipeline_checks(pipeline, f"pipelines[{index}]", loaded[1].parent, synapse if creds else None)


def pipeline_file_check(option: str | None) -> tuple[tuple[PipelineFile, Path] | None, Check]:
    try:
        loaded, path = load_pipeline_file(option)
    except PipelineConfigError as exc:
        fix = None if not pipeline_file_path(option).is_file() else \
            "edit the file there ('synapse-dagster check' says the same; pipelines.schema.json lets an editor mark it)"
        return None, Check.fail("pipeline file", "; ".join(str(exc).splitlines()), fix=fix)
    except OSError as exc:
        return None, Check.fail("pipeline file", one_line(exc), fix="make the pipeline file readable by this user")
    names = ", ".join(p.name for p in loaded.pipelines)
    return (loaded, path), Check.ok("pipeline file", f"{path}: {len(loaded.pipelines)} pipeline(s): {names}")


def pipeline_checks(pipeline: PipelineConfig, where: str, base_dir: Path,
                    synapse: SynapseResource | None) -> Iterator[Check]:
    """The collection, storage and project (skipped without working credentials), then every source; a
    storage-relative source is skipped unless the storage could be read."""
    storage_ok = False
    if synapse is None:
        yield Check.skip(pipeline.label, "data collection, storage and project not checked: Synapse credentials, "
                         "host or token failed (above)")
    else:
        target = LookupTarget(pipeline.name, synapse.credentials().host, pipeline.data_collection, pipeline.storage,
                              pipeline.project)
        client = synapse.client()
        yield collection_check(client, target, where, None if pipeline.assets is None else list(pipeline.assets))
        storage = storage_check(synapse.storage, target, where)
        storage_ok = storage.passed
        yield storage
        if pipeline.project is not None:
            yield project_check(client, target, where)
    for setting in pipeline.source_settings():
        setting_path = f"{where}.source.path" if setting.spec is None else f"{where}.assets.{setting.spec}.path"
        yield source_check(setting, owner=pipeline.label, where=setting_path, base_dir=base_dir,
                           storage=(lambda: synapse.storage(pipeline.storage)) if storage_ok else None,
                           storage_id=pipeline.storage)
