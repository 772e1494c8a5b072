"""Exactly once under faults on the upload endpoints: asking for presigned URLs, the storage PUT (single and
multipart) and the confirm. Whatever each answers, the run ends with one data file per distinct file and one unit
per valid unit, counted from the sandbox's state; when a confirm's answer is lost, Synapse is asked (by SHA1)
before anything is sent again.
"""

from __future__ import annotations

import json
from collections import Counter

import dagster as dg
import pytest

from synapse_dagster_tests.defs.test_ingest_end_to_end import make_pipeline, run
from synapse_sandbox.demo_data import generate_batch

UNITS = 6
ENDPOINTS = {
    "presign": {"method": "POST", "path": "^data_files/presigned_upload/upload/$"},
    "put": {"method": "PUT", "path": "^_storage/upload/"},
    "confirm": {"method": "POST", "path": "^data_files/presigned_upload/confirm_upload/$"},
}
ACTIONS = {
    "503-before": {"action": "error", "status": 503, "times": 2},
    "500-after": {"action": "error_after_commit", "status": 500, "times": 1},
    "502-after": {"action": "error_after_commit", "status": 502, "times": 1},
    "503-after": {"action": "error_after_commit", "status": 503, "times": 1},
    "504-after": {"action": "error_after_commit", "status": 504, "times": 1},
    "lost-answer": {"action": "lose_response", "times": 1},
    "429": {"action": "rate_limit", "retry_after": 1, "times": 1},
    "reset": {"action": "reset", "times": 1},
    "timeout": {"action": "slow_response", "latency_ms": 3000, "times": 1},
}
READ_TIMEOUT_S = 2  # the client's and the uploads', shorter than the slow answer
AMBIGUOUS = {"500-after", "lost-answer", "reset", "timeout"}  # a 504 on confirm is resent by the transport (idempotent)
LOOKUP = "POST data_files/verify_checksums/"
PUT_ROUTE = "PUT _storage/upload/<path:file_key>"
CASES = [(e, a) for e in ENDPOINTS for a in ACTIONS]


def distinct_batch(root, seed: int, image_size: int) -> None:
    """A batch whose every file's bytes appear nowhere else in the sandbox (labels carry the case's seed)."""
    generate_batch(root, units=UNITS, seed=seed, image_size=image_size, defects=False)
    for label in root.glob("*/label.json"):
        label.write_text(json.dumps({**json.loads(label.read_text()), "case": seed}))


def run_with_fault(tmp_path, sandbox, collection, seed: int, rules: list[dict],
                   image_size: int = 24) -> tuple[dg.ExecuteInProcessResult, int]:
    distinct_batch(tmp_path / "incoming" / "b001", seed, image_size)
    defs, _ = make_pipeline(tmp_path, collection)
    files_before = sandbox.stats()["counts"]["data_files"]
    sandbox.set_faults(rules)
    try:
        with dg.instance_for_test() as instance:
            result = run(defs, instance, read_timeout_s=READ_TIMEOUT_S)
    finally:
        sandbox.set_faults([])
    return result, sandbox.stats()["counts"]["data_files"] - files_before


def assert_exact(sandbox, collection: int, result, new_files: int) -> None:
    assert result.success
    units = Counter(u["meta"]["dataset_key"] for u in sandbox.units(collection))
    assert len(units) == UNITS and set(units.values()) == {1}, units
    assert new_files == 2 * UNITS  # every file's bytes are distinct (seeded per case): one data file each


@pytest.mark.parametrize(("endpoint", "action"), CASES, ids=[f"{e}-{a}" for e, a in CASES])
def test_each_fault_on_each_upload_endpoint_ends_exact(tmp_path, synapse_env, collection, endpoint, action):
    seed = 1000 + CASES.index((endpoint, action))
    lookups = synapse_env.stats()["requests"].get(LOOKUP, 0)
    puts = synapse_env.stats()["requests"].get(PUT_ROUTE, 0)
    result, new_files = run_with_fault(tmp_path, synapse_env, collection, seed,
                                       [{"match": ENDPOINTS[endpoint], **ACTIONS[action]}])
    assert_exact(synapse_env, collection, result, new_files)
    if endpoint == "put" and action == "timeout":  # the upload gave up on the slow PUT and sent it again
        assert synapse_env.stats()["requests"].get(PUT_ROUTE, 0) - puts > 2 * UNITS
    if endpoint == "confirm" and action in AMBIGUOUS:  # the answer never came: Synapse was asked before a resend
        assert synapse_env.stats()["requests"].get(LOOKUP, 0) > lookups


@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_each_fault_on_a_multipart_part_ends_exact(tmp_path, synapse_env, collection, action):
    synapse_env.admin("PUT", "config", {"multipart_threshold": 1024, "part_size": 1024})
    try:
        seed = 2000 + sorted(ACTIONS).index(action)  # stable per action
        result, new_files = run_with_fault(tmp_path, synapse_env, collection, seed,
                                           [{"match": ENDPOINTS["put"], **ACTIONS[action]}], image_size=64)
    finally:
        synapse_env.admin("PUT", "config", {"multipart_threshold": 100 * 2**20, "part_size": 100 * 2**20})
    assert_exact(synapse_env, collection, result, new_files)
    parts = [u for u in result.asset_value(["xray", "uploaded_files"]).files.values() if u.size > 1024]
    assert parts, "the batch must hold files big enough to go multipart"


MIXED = [
    {"match": {"method": method, "path": path}, **fault}
    for method, path in (("POST", "^data_files/presigned_upload/"), ("PUT", "^_storage/upload/"), ("POST", "^data_units/$"))
    for fault in ({"action": "error", "status": 503, "probability": 0.10},
                  {"action": "rate_limit", "retry_after": 1, "probability": 0.05},
                  {"action": "lose_response", "probability": 0.02},
                  {"action": "error_after_commit", "status": 502, "probability": 0.01})
]


def test_a_mixed_run_of_3000_files_under_random_faults_ends_exact(tmp_path, synapse_env, collection):
    """About 10% 503, 5% 429, 2% lost answers and 1% 502 after commit on every write endpoint, at random."""
    units = 1500
    root = tmp_path / "incoming" / "b001"
    generate_batch(root, units=units, seed=77, image_size=4, defects=False)
    for label in root.glob("*/label.json"):
        label.write_text(json.dumps({**json.loads(label.read_text()), "case": "mixed"}))
    defs, _ = make_pipeline(tmp_path, collection, creating_data_unit_batch_size=100, upload_max_workers=16)
    files_before = synapse_env.stats()["counts"]["data_files"]
    synapse_env.set_faults(MIXED)
    try:
        with dg.instance_for_test() as instance:
            result = run(defs, instance)
            fired = synapse_env.admin("GET", "faults")
    finally:
        synapse_env.set_faults([])
    assert sum(rule.get("fired", 0) for rule in fired["rules"]) > 50, fired  # the faults really happened
    assert result.success
    landed = Counter(u["meta"]["dataset_key"] for u in synapse_env.units(collection))
    assert len(landed) == units and set(landed.values()) == {1}
    assert synapse_env.stats()["counts"]["data_files"] - files_before == 2 * units
