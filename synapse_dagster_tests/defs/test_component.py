"""The pipeline file as a Dagster Component in another dg project: scaffolded, loaded, and a batch ingested."""

from __future__ import annotations

import dagster as dg
import yaml
from dagster.components.testing import create_defs_folder_sandbox

from synapse_dagster.component import SynapseIngest
from synapse_sandbox.demo_data import generate_batch

BATCH = "2026-11-30_b1"


def test_component_builds_the_pipelines_and_ingests_a_batch(tmp_path, synapse_env, collection):
    with create_defs_folder_sandbox() as project:
        defs_path = project.scaffold_component(
            component_cls=SynapseIngest,
            defs_yaml_contents={"type": "synapse_dagster.component.SynapseIngest",
                                "attributes": {"pipeline_file": "pipelines.yaml", "state_dir": str(tmp_path / "state")}},
        )
        expected = generate_batch(defs_path / "incoming" / BATCH, units=4, seed=5, image_size=8, defects=False)
        (defs_path / "pipelines.yaml").write_text(yaml.safe_dump({"pipelines": [{
            "name": "via_component", "data_collection": collection, "storage": 1,
            "source": {"path": "./incoming"}, "metadata": {"key_column": "patient_id"}}]}))
        with project.load_component_and_build_defs(defs_path=defs_path) as (component, defs):
            assert isinstance(component, SynapseIngest)
            assert defs.resolve_sensor_def("via_component_new_batches")
            with dg.instance_for_test() as instance:
                instance.add_dynamic_partitions("via_component_batches", [BATCH])
                result = defs.resolve_job_def("via_component_ingest").execute_in_process(
                    instance=instance, partition_key=BATCH, raise_on_error=False)
    assert result.success
    landed = sorted(u["meta"]["patient_id"] for u in synapse_env.units(collection))
    assert landed == sorted(expected["valid"])
