"""A flat folder cut into arrival windows: a window's run ingests exactly the files modified in it."""

from __future__ import annotations

import datetime as dt
import os
import random

import dagster as dg
import yaml

from synapse_dagster.definitions import build_definitions
from synapse_sandbox.demo_data import png_bytes
from synapse_dagster.config.loading import parse_pipeline_file


def test_window_run_ingests_only_its_window(tmp_path, synapse_env, collection):
    flat = tmp_path / "camera"
    flat.mkdir()
    rng = random.Random(3)
    hours = {"P0001": 9, "P0002": 9, "P0003": 10}
    for pid, hour in hours.items():
        stamp = dt.datetime(2026, 11, 24, hour, 30, tzinfo=dt.UTC).timestamp()
        for name, data in ((f"{pid}.png", png_bytes(8, 8, rng)), (f"{pid}.json", b'{"ok": true}')):
            (flat / name).write_bytes(data)
            os.utime(flat / name, (stamp, stamp))
    config = {"name": "cam", "data_collection": collection, "storage": 1, "source": {"path": "./camera"},
              "batches": {"mode": "windows", "window": "hourly"}, "pattern": "flat",
              "metadata": {"filename_regex": r"^(?P<patient_id>P\d{4})", "static": {"age": 30, "sex": "M"}}}
    (tmp_path / "pipelines.yaml").write_text(yaml.safe_dump({"pipelines": [config]}))
    defs = build_definitions(parse_pipeline_file({"pipelines": [config]}), base_dir=tmp_path, state_dir=tmp_path / "state")
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("cam_batches", ["2026-11-24T09"])
        result = defs.resolve_job_def("cam_ingest").execute_in_process(instance=instance, partition_key="2026-11-24T09")
    assert result.success
    keys = sorted(u["meta"]["dataset_key"] for u in synapse_env.units(collection))
    assert keys == ["2026-11-24T09/P0001", "2026-11-24T09/P0002"]
