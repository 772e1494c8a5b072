"""The code location's shape, pinned: asset keys and lineage, checks, jobs, sensors and what each says about itself.

A change to any of them shows up as a snapshot diff to review (update with ``scripts/test --snapshot-update``).
Sensor cursors, partition names and run keys are stored in users' Dagster instances, so they must not drift.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from synapse_dagster.config.loading import parse_pipeline_file
from synapse_dagster.definitions import build_definitions, load_definitions

REPO = Path(__file__).resolve().parents[2]


def shape(defs: dg.Definitions) -> dict:
    graph = defs.resolve_asset_graph()
    assets = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        spec = node.to_asset_spec()
        assets[key.to_user_string()] = {
            "group": node.group_name,
            "deps": sorted(k.to_user_string() for k in node.parent_keys),
            "kinds": sorted(spec.kinds),
            "partitions": node.partitions_def.name if node.partitions_def else None,
            "pool": sorted(node.pools or []),
            "retries": _retries(defs.get_assets_def(key).op.retry_policy),
            "description": spec.description,
            "checks": {c.name: {"blocking": c.blocking, "description": c.description}
                       for c in sorted(node.check_keys and [graph.get_check_spec(ck) for ck in node.check_keys] or [],
                                       key=lambda c: c.name)},
        }
    repo = defs.get_repository_def()
    jobs = {j.name: {"description": j.description, "tags": dict(j.tags)} for j in repo.get_all_jobs()
            if not j.name.startswith("__")}
    sensors = {s.name: {"job": s.job_name, "interval": s.minimum_interval_seconds,
                        "default_status": s.default_status.value, "description": s.description}
               for s in repo.sensor_defs}
    return {"assets": assets, "jobs": jobs, "sensors": sensors, "resources": sorted(defs.resources)}


def _retries(policy: dg.RetryPolicy | None) -> str | None:
    return None if policy is None else f"{policy.max_retries}x from {policy.delay}s, {policy.backoff}, {policy.jitter}"


def test_repo_code_location_shape(snapshot):
    assert shape(load_definitions(REPO / "pipelines.yaml")) == snapshot


def test_every_batch_mode_and_source_mode_shape(snapshot, tmp_path):
    common = {"data_collection": 3, "storage": 2}
    pipelines = parse_pipeline_file({"pipelines": [
        {"name": "folders_s3", **common, "source": {"path": "s3://bucket/incoming"},
         "batches": {"ready_marker": "_READY"}, "sensor": {"default_status": "running", "minimum_interval_seconds": 30}},
        {"name": "windows_gcs", **common, "source": {"path": "gs://bucket/camera"}, "batches": {"mode": "windows", "window": "15m"}},
        {"name": "keys_multi", **common, "project": 4, "batches": {"mode": "keys"},
         "assets": {"image_1": {"path": "s3://images"}, "label_1": {"path": "./labels"}}},
    ]})
    defs = build_definitions(pipelines, base_dir=tmp_path, state_dir=tmp_path / "state")
    assert shape(defs) == snapshot
