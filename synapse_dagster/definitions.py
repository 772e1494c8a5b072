"""The code location: the pipelines of the pipeline file, each an asset group with its job and sensor.

The file comes from ``SYNAPSE_DAGSTER_PIPELINES`` (default ``pipelines.yaml`` in the working directory). A broken
file fails here, when the code location loads, with its line and the field named.
"""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

from synapse_dagster.config.loading import PipelineConfigError, load_pipeline_file
from synapse_dagster.config.models import PipelineFile
from synapse_dagster.core.deliver.ledger import LedgerUrlError, check_ledger_url
from synapse_dagster.defs.dagster_fixes import apply_dagster_fixes
from synapse_dagster.defs.pipeline import build_pipeline_definitions
from synapse_dagster.defs.ray_delivery import RAY_RESOURCE
from synapse_dagster.defs.resources import (
    LEDGER_URL_ENV, IngestStateResource, SettingError, SourcesResource, SynapseResource, api_concurrency_setting)

apply_dagster_fixes()

STATE_DIR_ENV = "SYNAPSE_DAGSTER_STATE_DIR"
IO_BASE_ENV = "SYNAPSE_DAGSTER_IO_BASE"  # where step outputs live: a folder, or s3://…, gs://… for several hosts


def default_state_dir(pipeline_file: Path) -> Path:
    return Path(os.environ.get(STATE_DIR_ENV) or pipeline_file.parent / ".synapse_dagster" / "state").expanduser()


def ledger_url_setting() -> dg.EnvVar | None:
    """The ledger URL as an EnvVar, read when a step runs: its password never shows in the UI's run config."""
    url = os.environ.get(LEDGER_URL_ENV)
    if not url:
        return None
    check_ledger_url(url)
    return dg.EnvVar(LEDGER_URL_ENV)


def build_definitions(pipelines: PipelineFile, *, base_dir: Path, state_dir: Path) -> dg.Definitions:
    resources = dg.Definitions(resources={
        "synapse": SynapseResource(max_concurrent_requests=api_concurrency_setting()),
        "ingest_state": IngestStateResource(state_dir=str(state_dir), ledger_url=ledger_url_setting()),
        "sources": SourcesResource(base_dir=str(base_dir)),
        # FilesystemIOManager writes through universal-pathlib, so an object-store URL works as its base; its
        # credentials and endpoint come from the environment (AWS_*, GOOGLE_APPLICATION_CREDENTIALS).
        "io_manager": dg.FilesystemIOManager(base_dir=os.environ.get(IO_BASE_ENV) or str(state_dir / "io")),
        **ray_resources(pipelines),
    })
    return dg.Definitions.merge(resources, *(build_pipeline_definitions(p) for p in pipelines.pipelines))


def ray_resources(pipelines: PipelineFile) -> dict[str, dg.ConfigurableResource]:
    """The Ray cluster for pipelines with ``engine: ray``: the one at RAY_ADDRESS, else a local Ray started in the
    step (dagster-ray's LocalRay, see defs.ray_cluster). Ray is imported only when a pipeline asks for it."""
    wanting = [p.name for p in pipelines.pipelines if p.engine.kind == "ray"]
    if not wanting:
        return {}
    try:
        from synapse_dagster.defs.ray_cluster import RayCluster
    except ImportError:
        raise PipelineConfigError(f"pipeline(s) {', '.join(wanting)} set engine.kind 'ray', and Ray is not installed "
                                  "here: pip install 'synapse-dagster[ray]'") from None
    return {RAY_RESOURCE: RayCluster(ray_init_options={"ignore_reinit_error": True, "log_to_driver": False})}


def load_definitions(pipeline_file: str | os.PathLike[str] | None = None) -> dg.Definitions:
    pipelines, path = load_pipeline_file(pipeline_file)
    return build_definitions(pipelines, base_dir=path.parent, state_dir=default_state_dir(path))


@dg.definitions
def defs() -> dg.Definitions:
    """What Dagster loads. A user's mistake is raised without our frames: its message already names the file, line
    and fix, and Dagster prints every frame it gets under the message (``--verbose`` adds Dagster's own)."""
    try:
        return load_definitions()
    except (PipelineConfigError, LedgerUrlError, SettingError) as mistake:
        raise mistake.with_traceback(None) from None
