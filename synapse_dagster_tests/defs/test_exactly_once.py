"""Exactly once under faults on ``POST data_units/``: whatever the sandbox does to the request, the collection ends
with exactly one unit per valid unit of the batch and exactly one data file per file, counted from its state.

The faults are the sandbox's own switches: an error before anything is written (a retry is safe), 5xx *after* the
write committed (what the SDK's own POST retries turn into duplicates), a dropped connection after commit (a lost
answer), a connection reset (RST) after commit, an answer slower than the client's read timeout after commit,
and 429 with ``Retry-After``.
"""

from __future__ import annotations

from collections import Counter

import dagster as dg
import pytest

from synapse_dagster_tests.defs.test_ingest_end_to_end import make_pipeline, run
from synapse_sandbox.demo_data import generate_batch

UNITS = 12
CREATE = {"method": "POST", "path": "^data_units/$"}
FAULTS = {
    "503-before-commit": {"action": "error", "status": 503, "times": 2},
    "500-after-commit": {"action": "error_after_commit", "status": 500, "times": 1},
    "502-after-commit": {"action": "error_after_commit", "status": 502, "times": 1},
    "503-after-commit": {"action": "error_after_commit", "status": 503, "times": 1},
    "504-after-commit": {"action": "error_after_commit", "status": 504, "times": 2},
    "lost-answer": {"action": "lose_response", "times": 2},
    "429-retry-after": {"action": "rate_limit", "retry_after": 1, "times": 2},
    "connection-reset-after-commit": {"action": "reset", "times": 2},
    "timeout-after-commit": {"action": "slow_response", "latency_ms": 3000, "times": 1},
}
READ_TIMEOUT_S = 2  # the client's, shorter than the slow answer


def landed(sandbox, collection: int) -> Counter:
    return Counter(u["meta"]["dataset_key"] for u in sandbox.units(collection))


@pytest.mark.parametrize("fault", sorted(FAULTS), ids=sorted(FAULTS))
def test_each_fault_on_unit_creation_ends_with_exactly_the_batch(tmp_path, synapse_env, collection, fault):
    generate_batch(tmp_path / "incoming" / "b001", units=UNITS, seed=4, image_size=8, defects=False)
    defs, _ = make_pipeline(tmp_path, collection)
    files_before = synapse_env.stats()["counts"]["data_files"]
    synapse_env.set_faults([{"match": CREATE, **FAULTS[fault]}])
    try:
        with dg.instance_for_test() as instance:
            result = run(defs, instance, read_timeout_s=READ_TIMEOUT_S)
    finally:
        synapse_env.set_faults([])
    assert result.success
    units = landed(synapse_env, collection)
    assert len(units) == UNITS and set(units.values()) == {1}, units
    assert synapse_env.stats()["counts"]["data_files"] - files_before == 2 * UNITS
    report = result.asset_value(["xray", "created_units"])
    assert len(report.by_status("created")) == UNITS and not report.by_status("failed")
    if "after-commit" in fault or fault == "lost-answer":  # an answer that never came or lied: Synapse was asked
        assert report.reconciled and report.units_listed >= 1, (report.reconciled, report.units_listed)


def test_a_refused_token_midway_fails_the_run_naming_the_units(tmp_path, synapse_env, collection):
    """A 401 on the second chunk: what landed stays recorded, the rest is named, and the run fails."""
    generate_batch(tmp_path / "incoming" / "b001", units=UNITS, seed=4, image_size=8, defects=False)
    defs, _ = make_pipeline(tmp_path, collection)
    synapse_env.set_faults([{"match": CREATE, "action": "error", "status": 401, "probability": 1.0}])
    try:
        with dg.instance_for_test() as instance:
            result = run(defs, instance)
            check = next(c for c in result.get_asset_check_evaluations() if c.check_name == "all_valid_units_created")
    finally:
        synapse_env.set_faults([])
    assert not result.success
    assert not check.passed and f"0 of {UNITS} valid units exist; {UNITS} did not make it" in check.description
    report = result.asset_value(["xray", "created_units"])
    errors = {o.error for o in report.by_status("failed")}
    assert len(report.by_status("failed")) == UNITS
    assert errors == {"Synapse refused the access token (401); set SYNAPSE_ACCESS_TOKEN or run 'synapse login'",
                      "not sent: Synapse refused the access token (401); set SYNAPSE_ACCESS_TOKEN or run 'synapse login'"}
    assert report.requests_sent == 1  # the first refusal stops the run from knocking again
    assert landed(synapse_env, collection) == Counter()
