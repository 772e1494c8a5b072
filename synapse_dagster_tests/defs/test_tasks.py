"""A pipeline with a project gives each created unit exactly one task there, whatever ``POST tasks/`` answers."""

from __future__ import annotations

from collections import Counter

import dagster as dg
import pytest

from synapse_dagster_tests.defs.test_ingest_end_to_end import make_pipeline, run
from synapse_sandbox.demo_data import generate_batch

UNITS = 10
FAULTS = {
    "none": [],
    "502-after-commit": [{"action": "error_after_commit", "status": 502, "times": 1}],
    "lost-answer": [{"action": "lose_response", "times": 2}],
    "503-before": [{"action": "error", "status": 503, "times": 2}],
    "500-after-commit": [{"action": "error_after_commit", "status": 500, "times": 1}],
    "503-after-commit": [{"action": "error_after_commit", "status": 503, "times": 1}],
    "504-after-commit": [{"action": "error_after_commit", "status": 504, "times": 1}],
    "429-retry-after": [{"action": "rate_limit", "retry_after": 1, "times": 2}],
    "connection-reset": [{"action": "reset", "times": 1}],
    "timeout-after-commit": [{"action": "slow_response", "latency_ms": 3000, "times": 1}],
}
READ_TIMEOUT_S = 2


def project_tasks(sandbox, project: int) -> Counter:
    pages, _ = sandbox.client().list_tasks({"project": project}, list_all=True, url_conversion={})
    return Counter(t["data_unit"] for t in pages)


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_one_task_per_unit_under_faults_and_reruns(tmp_path, synapse_env, collection, fault):
    project = 500 + sorted(FAULTS).index(fault)
    synapse_env.seed({"projects": [{"id": project, "title": f"labeling {fault}", "data_collection": collection}]})
    generate_batch(tmp_path / "incoming" / "b001", units=UNITS, seed=5, image_size=8, defects=False)
    defs, _ = make_pipeline(tmp_path, collection, project=project)
    synapse_env.set_faults([{"match": {"method": "POST", "path": "^tasks/$"}, **rule} for rule in FAULTS[fault]])
    try:
        with dg.instance_for_test() as instance:
            first = run(defs, instance, read_timeout_s=READ_TIMEOUT_S)
            second = run(defs, instance, read_timeout_s=READ_TIMEOUT_S)
    finally:
        synapse_env.set_faults([])
    assert first.success and second.success
    units = {u["id"] for u in synapse_env.units(collection)}
    assert len(units) == UNITS
    tasks = project_tasks(synapse_env, project)
    assert set(tasks) == units and set(tasks.values()) == {1}, tasks
    again = second.asset_value(["xray", "created_units"]).tasks
    assert not again.created and len(again.existing) == UNITS  # the re-run created no task
