"""``SynapseIngest``: the pipeline file as a Dagster Component, so any dg project can ingest into Synapse.

In a dg project, ``dg scaffold defs synapse_dagster.component.SynapseIngest ingest`` writes a ``defs.yaml``::

    type: synapse_dagster.component.SynapseIngest
    attributes:
      pipeline_file: pipelines.yaml     # relative to this defs.yaml's folder
      state_dir: /var/lib/synapse-dagster   # optional: where the ledger lives

and the component turns every pipeline of that file into its asset group, job, checks and sensor, with the same
resources as this code location.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from pydantic import Field

from synapse_dagster.config.loading import load_pipeline_file
from synapse_dagster.definitions import build_definitions, default_state_dir


class SynapseIngest(dg.Component, dg.Model, dg.Resolvable):
    """Ingest the sources of a pipeline file into Synapse data collections, one partition per batch."""

    pipeline_file: str = Field(description="The pipeline file (YAML), relative to this component's folder.")
    state_dir: str | None = Field(
        default=None, description="Where the ingestion ledger lives; default: SYNAPSE_DAGSTER_STATE_DIR or "
        ".synapse_dagster/state beside the pipeline file. Keep it on durable storage.")

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        pipelines, path = load_pipeline_file(Path(context.path) / self.pipeline_file)
        state_dir = Path(self.state_dir).expanduser() if self.state_dir else default_state_dir(path)
        return build_definitions(pipelines, base_dir=path.parent, state_dir=state_dir)
