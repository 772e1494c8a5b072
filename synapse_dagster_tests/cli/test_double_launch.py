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
from synapse_dagster_tests.defs.test_tasks import project_tasks

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


def point(method: str, path: str, route: str, arrivals: int, rule: dict) -> dict:
    return {"match": {"method": method, "path": path}, "route": route, "arrivals": arrivals, "rule": rule}


PUT = ("PUT", "^_storage/upload/", "PUT _storage/upload/<path:file_key>")
CONFIRM = ("POST", "^data_files/presigned_upload/confirm_upload/$", "POST data_files/presigned_upload/confirm_upload/")
CREATE = ("POST", "^data_units/$", "POST data_units/")
TASKS = ("POST", "^tasks/$", "POST tasks/")
HOLD = 2000  # ms the sandbox holds the request the run is killed in
KILL_POINTS = {
    # The sandbox holds the run at the point (latency before serving, or an answer held after the commit, or a
    # request held and then refused unserved), and the test kills it there once the route saw ``arrivals``.
    "during-puts": point(*PUT, 6, {"action": "latency", "latency_ms": 200}),
    "between-puts-and-confirm": point(*CONFIRM, 1, {"action": "error", "status": 503, "latency_ms": HOLD}),
    "confirm-in-flight": point(*CONFIRM, 1, {"action": "latency", "latency_ms": HOLD}),
    "between-confirm-and-ledger": point(*CONFIRM, 1, {"action": "slow_response", "latency_ms": HOLD}),
    "creation-chunk-in-flight": point(*CREATE, 1, {"action": "latency", "latency_ms": HOLD}),
    "between-creation-and-ledger": point(*CREATE, 1, {"action": "slow_response", "latency_ms": HOLD}),
    "between-creation-chunks": point(*CREATE, 3, {"action": "latency", "latency_ms": 300}),
    "between-tasks-and-ledger": point(*TASKS, 1, {"action": "slow_response", "latency_ms": HOLD}),
}


@pytest.mark.parametrize("where", sorted(KILL_POINTS))
def test_a_run_killed_anywhere_lets_go_and_the_rerun_ends_exact(tmp_path, synapse_env, collection, where):
    """SIGKILL at a point of delivery, then a re-run: it starts at once (the dead run's claim is free), asks
    Synapse what the dead run left, and ends exact: one unit per unit, one data file per file, one task per unit."""
    kill = KILL_POINTS[where]
    index = sorted(KILL_POINTS).index(where)
    project = 800 + index
    synapse_env.seed({"projects": [{"id": project, "title": f"killed {where}", "data_collection": collection}]})
    host = ingest_setup(tmp_path, collection, "killed", 100 + index, upload_max_workers=2,
                        creating_data_unit_batch_size=5, project=project)
    files_before = synapse_env.stats()["counts"]["data_files"]
    seen_before = synapse_env.stats()["requests"].get(kill["route"], 0)
    synapse_env.set_faults([{"match": kill["match"], **kill["rule"]}])
    victim = host.start("b001", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while synapse_env.stats()["requests"].get(kill["route"], 0) - seen_before < kill["arrivals"]:
            assert time.monotonic() < deadline and victim.poll() is None, "the run never reached the kill point"
            time.sleep(0.05)
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=30)
        time.sleep(kill["rule"]["latency_ms"] / 1000 + 0.5)  # let the sandbox finish what the dead run had sent
    finally:
        synapse_env.set_faults([])
    started = time.monotonic()
    rerun = host.run("b001")
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert time.monotonic() - started < 60  # it did not wait out the dead run's lease
    units = synapse_env.units(collection)
    landed = Counter(u["meta"]["dataset_key"] for u in units)
    assert len(landed) == UNITS and set(landed.values()) == {1}, landed
    assert synapse_env.stats()["counts"]["data_files"] - files_before == 2 * UNITS
    tasks = project_tasks(synapse_env, project)
    assert set(tasks) == {u["id"] for u in units} and set(tasks.values()) == {1}, tasks
