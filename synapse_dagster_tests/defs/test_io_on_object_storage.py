"""Step outputs on object storage (``SYNAPSE_DAGSTER_IO_BASE=s3://…``), so a step on another host can load them."""

from __future__ import annotations

import dagster as dg

from synapse_dagster_tests.defs.test_ingest_end_to_end import make_pipeline, run
from synapse_sandbox.demo_data import generate_batch


def test_step_outputs_go_to_the_bucket_and_the_batch_lands(tmp_path, synapse_env, collection, s3_server, monkeypatch):
    bucket = s3_server.new_bucket("io")
    monkeypatch.setenv("SYNAPSE_DAGSTER_IO_BASE", f"s3://{bucket}/steps")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_server.endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_key)
    generate_batch(tmp_path / "incoming" / "b001", units=4, seed=12, image_size=8, defects=False)
    defs, state_dir = make_pipeline(tmp_path, collection)
    with dg.instance_for_test() as instance:
        result = run(defs, instance)
    assert result.success
    keys = sorted(o["Key"] for o in s3_server.client().list_objects_v2(Bucket=bucket)["Contents"])
    names = ["collection_specs", "source_inventory", "grouped_data_units", "validated_meta", "uploaded_files", "created_units"]
    assert keys == sorted(f"steps/xray/{name}/b001" for name in names)
    assert not (state_dir / "io").exists()  # nothing a later step needs stayed on this disk
    assert len(synapse_env.units(collection)) == 4
