"""The code location: one asset group and one job per pipeline of the pipeline file.

The file comes from ``SYNAPSE_DAGSTER_PIPELINES`` (default ``pipelines.yaml`` in the working
directory). A broken file fails here, when the code location loads, with the field named.
"""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

from synapse_dagster.assets import build_pipeline_assets
from synapse_dagster.jobs import build_ingest_job
from synapse_dagster.pipeline_config import PipelineFile, load_pipeline_file
from synapse_dagster.resources import IngestStateResource, SynapseResource
from synapse_dagster.sensors import build_batch_sensor

STATE_DIR_ENV = "SYNAPSE_DAGSTER_STATE_DIR"


def default_state_dir(pipeline_file: Path) -> Path:
    return Path(os.environ.get(STATE_DIR_ENV) or pipeline_file.parent / ".synapse_dagster" / "state").expanduser()


def build_definitions(pipelines: PipelineFile, *, base_dir: Path, state_dir: Path) -> dg.Definitions:
    assets, jobs, sensors = [], [], []
    for pipeline in pipelines.pipelines:
        assets.extend(build_pipeline_assets(pipeline, base_dir))
        job = build_ingest_job(pipeline)
        jobs.append(job)
        sensor = build_batch_sensor(pipeline, base_dir, job)
        if sensor is not None:
            sensors.append(sensor)
    return dg.Definitions(
        assets=assets,
        jobs=jobs,
        sensors=sensors,
        resources={
            "synapse": SynapseResource(),
            "ingest_state": IngestStateResource(state_dir=str(state_dir)),
            "io_manager": dg.FilesystemIOManager(base_dir=str(state_dir / "io")),
        },
    )


def load_definitions(pipeline_file: str | os.PathLike[str] | None = None) -> dg.Definitions:
    pipelines, path = load_pipeline_file(pipeline_file)
    return build_definitions(pipelines, base_dir=path.parent, state_dir=default_state_dir(path))


@dg.definitions
def defs() -> dg.Definitions:
    return load_definitions()
