"""Four batches at once against a pool of 2: the API never sees more requests at a time than the deployment allows
(pool slots x per-process concurrency), 429s slow everyone down, and nothing is duplicated."""

from __future__ import annotations

import time
from collections import Counter

from synapse_dagster_tests.cli.ingest_hosts import make_host, write_batch

UNITS = 15
BATCHES = ("b001", "b002", "b003", "b004")
POOL_LIMIT, PER_PROCESS = 2, 1
API = "^(?!_storage/|_sandbox/)"  # every route but storage and the sandbox's own


def test_four_batches_with_a_pool_of_two_stay_within_the_api_limit(tmp_path, synapse_env, collection):
    for i, batch in enumerate(BATCHES):
        write_batch(tmp_path / "incoming" / batch, UNITS, 700 + i, "parallel")
    host = make_host(tmp_path, pipeline="parallel", collection=collection, source={"path": "./incoming"},
                     pool_limit=POOL_LIMIT, env={"SYNAPSE_DAGSTER_API_CONCURRENCY": str(PER_PROCESS)},
                     upload_max_workers=4, creating_data_unit_batch_size=5)
    files_before = synapse_env.stats()["counts"]["data_files"]
    synapse_env.set_faults([
        {"match": {"path": API}, "action": "rate_limit", "retry_after": 1, "probability": 0.05},
        {"match": {"path": API}, "action": "latency", "latency_ms": 60},  # requests overlap for certain
    ])
    before = synapse_env.admin("GET", "stats?reset_peak=1")["concurrency"]
    assert before["api_in_flight"] == 0, f"API requests still in flight from earlier tests: {before}"
    try:
        started = time.monotonic()
        runs = [host.start(batch) for batch in BATCHES]
        outputs = [r.communicate(timeout=600)[0] for r in runs]
        concurrency = synapse_env.stats()["concurrency"]
        peak = concurrency["api_peak"]
    finally:
        synapse_env.set_faults([])
    assert [r.returncode for r in runs] == [0] * len(BATCHES), outputs
    assert 1 <= peak <= POOL_LIMIT * PER_PROCESS, (
        f"{peak} API requests at once ({concurrency['api_peak_routes']}); the limit is {POOL_LIMIT * PER_PROCESS}")
    landed = Counter(u["meta"]["dataset_key"] for u in synapse_env.units(collection))
    assert len(landed) == len(BATCHES) * UNITS and set(landed.values()) == {1}, landed
    assert synapse_env.stats()["counts"]["data_files"] - files_before == 2 * len(BATCHES) * UNITS
    print(f"peak API concurrency {peak} (limit {POOL_LIMIT * PER_PROCESS}) in {time.monotonic() - started:.1f}s")
