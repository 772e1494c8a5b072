"""Two launches of the same batch at once (two sensor ticks, a click during a backfill) do the work once.

Two real ``synapse-dagster ingest`` processes share the Dagster instance and the ledger, as two runs launched by
one daemon do; the second waits on the batch's delivery claim and then finds everything done.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections import Counter

import pytest

from synapse_dagster_tests.cli.ingest_hosts import IngestHost, make_host, reported, write_batch

UNITS = 40


def ingest_setup(tmp_path, collection: int, name: str, seed: int, **settings) -> IngestHost:
    write_batch(tmp_path / "incoming" / "b001", UNITS, seed, name)
    return make_host(tmp_path, pipeline=name, collection=collection, source={"path": "./incoming"}, **settings)


def test_two_simultaneous_ingests_of_one_batch_create_everything_once(tmp_path, synapse_env, collection):
    host = ingest_setup(tmp_path, collection, "twice", 91, creating_data_unit_batch_size=5, upload_max_workers=2)
    files_before = synapse_env.stats()["counts"]["data_files"]
    # Slow every upload a little so the two runs overlap for certain.
    synapse_env.set_faults([{"match": {"method": "PUT", "path": "^_storage/upload/"}, "action": "latency", "latency_ms": 50}])
    try:
        runs = [host.start("b001") for _ in range(2)]
        outputs = [r.communicate(timeout=300)[0] for r in runs]
    finally:
        synapse_env.set_faults([])
    assert [r.returncode for r in runs] == [0, 0], outputs
    landed = Counter(u["meta"]["dataset_key"] for u in synapse_env.units(collection))
    assert len(landed) == UNITS and set(landed.values()) == {1}
    assert synapse_env.stats()["counts"]["data_files"] - files_before == 2 * UNITS
    created = sorted(reported(out, "data units created") for out in outputs)
    assert created == [0, UNITS], outputs  # one run did the work, the other found it done


KILL_POINTS = {
    # where: (method, path the fault slows, route whose arrivals are counted, arrivals before the kill, latency ms)
    "during-puts": ("PUT", "^_storage/upload/", "PUT _storage/upload/<path:file_key>", 6, 200),
    "confirm-in-flight": ("POST", "^data_files/presigned_upload/confirm_upload/$",
                          "POST data_files/presigned_upload/confirm_upload/", 1, 2000),
    "creation-chunk-in-flight": ("POST", "^data_units/$", "POST data_units/", 1, 2000),
    "between-creation-chunks": ("POST", "^data_units/$", "POST data_units/", 3, 300),
}


@pytest.mark.parametrize("point", sorted(KILL_POINTS))
def test_a_run_killed_anywhere_lets_go_and_the_rerun_ends_exact(tmp_path, synapse_env, collection, point):
    """SIGKILL at a point of delivery (the sandbox holds the run there with latency), then a re-run: it starts at
    once (the dead run's claim is free), asks Synapse what the dead run left, and ends exact."""
    method, path, route, arrivals, latency = KILL_POINTS[point]
    host = ingest_setup(tmp_path, collection, "killed", 100 + sorted(KILL_POINTS).index(point),
                        upload_max_workers=2, creating_data_unit_batch_size=5)
    files_before = synapse_env.stats()["counts"]["data_files"]
    seen_before = synapse_env.stats()["requests"].get(route, 0)
    synapse_env.set_faults([{"match": {"method": method, "path": path}, "action": "latency", "latency_ms": latency}])
    victim = host.start("b001", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while synapse_env.stats()["requests"].get(route, 0) - seen_before < arrivals:
            assert time.monotonic() < deadline and victim.poll() is None, "the run never reached the kill point"
            time.sleep(0.05)
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=30)
        time.sleep(latency / 1000 + 0.5)  # let the sandbox finish (and commit) what the dead run had sent
    finally:
        synapse_env.set_faults([])
    started = time.monotonic()
    rerun = host.run("b001")
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert time.monotonic() - started < 60  # it did not wait out the dead run's lease
    landed = Counter(u["meta"]["dataset_key"] for u in synapse_env.units(collection))
    assert len(landed) == UNITS and set(landed.values()) == {1}, landed
    assert synapse_env.stats()["counts"]["data_files"] - files_before == 2 * UNITS
