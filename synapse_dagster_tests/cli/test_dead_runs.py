"""Runs that die let go, and waiting for a pool slot sleeps.

Real ``synapse-dagster ingest`` processes on one Dagster instance whose ``synapse_api`` pool has few slots, as in a
backfill. A SIGKILLed run holds its slots until something notices it is dead; here the next run does, at once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import Counter

import dagster as dg

from synapse_dagster.defs.run_workers import HEARTBEAT_TAG, HOST_TAG, STALE_AFTER_S, reap_dead_runs
from synapse_dagster_tests.cli.ingest_hosts import IngestHost, make_host, reported, write_batch

UNITS = 12
POOL = "synapse_api"
SLOW_PUTS = [{"match": {"method": "PUT", "path": "^_storage/upload/"}, "action": "latency", "latency_ms": 400}]


def pooled_host(tmp_path, collection: int, name: str, batches: list[str], pool_limit: int) -> IngestHost:
    for i, batch in enumerate(batches):
        write_batch(tmp_path / "incoming" / batch, UNITS, 500 + 10 * pool_limit + i, name)
    return make_host(tmp_path, pipeline=name, collection=collection, source={"path": "./incoming"},
                     pool_limit=pool_limit, upload_max_workers=1, creating_data_unit_batch_size=5)


def wait_for(condition, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.1)


def pool_info(host: IngestHost):
    with host.instance() as instance:
        return instance.event_log_storage.get_concurrency_info(POOL)


def cpu_seconds(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def test_two_killed_runs_free_their_slots_and_the_rerun_starts_at_once(tmp_path, synapse_env, collection):
    host = pooled_host(tmp_path, collection, "reaped", ["b001", "b002"], pool_limit=2)
    files_before = synapse_env.stats()["counts"]["data_files"]
    synapse_env.set_faults(SLOW_PUTS)
    try:
        victims = [host.start(b, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for b in ("b001", "b002")]
        wait_for(lambda: pool_info(host).active_slot_count == 2, "both runs hold a pool slot, mid-upload")
        for victim in victims:
            victim.send_signal(signal.SIGKILL)
            victim.wait(timeout=30)
    finally:
        synapse_env.set_faults([])
    assert pool_info(host).active_slot_count == 2  # nothing noticed yet: the dead runs still hold both slots
    started = time.monotonic()
    rerun = host.run("b001", timeout=120)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert time.monotonic() - started < 60, "the re-run waited for slots the dead runs held"
    assert rerun.stderr.count("died: its process") == 2, rerun.stderr
    with host.instance() as instance:
        statuses = sorted(r.status.value for r in instance.get_runs())
        assert statuses == ["FAILURE", "FAILURE", "SUCCESS"], statuses
        assert instance.event_log_storage.get_concurrency_info(POOL).active_slot_count == 0
    landed = Counter(u["meta"]["dataset_key"] for u in synapse_env.units(collection))
    b001 = {k: n for k, n in landed.items() if k.startswith("b001/")}
    assert len(b001) == UNITS and set(b001.values()) == {1}, landed
    assert set(landed.values()) == {1}
    # and the other dead run's batch, re-run too, ends exact: every distinct file once
    other = host.run("b002", timeout=120)
    assert other.returncode == 0 and reported(other.stdout, "data units created") <= UNITS, other.stdout
    landed = Counter(u["meta"]["dataset_key"] for u in synapse_env.units(collection))
    assert len(landed) == 2 * UNITS and set(landed.values()) == {1}
    assert synapse_env.stats()["counts"]["data_files"] - files_before == 2 * 2 * UNITS


def test_a_run_waiting_for_a_pool_slot_sleeps(tmp_path, synapse_env, collection):
    """Dagster 1.13 spins while a step waits for a slot; with the fix the waiting run uses next to no CPU."""
    host = pooled_host(tmp_path, collection, "waiting", ["b001", "b002"], pool_limit=1)
    synapse_env.set_faults(SLOW_PUTS)
    try:
        holder = host.start("b001")
        wait_for(lambda: pool_info(host).active_slot_count == 1, "the first run holds the slot")
        waiter = host.start("b002")
        wait_for(lambda: pool_info(host).pending_step_count >= 1, "the second run waits for the slot")
        before, t0 = cpu_seconds(waiter.pid), time.monotonic()
        time.sleep(3)
        busy = (cpu_seconds(waiter.pid) - before) / (time.monotonic() - t0)
        still_waiting = pool_info(host).pending_step_count >= 1
    finally:
        synapse_env.set_faults([])
    outputs = [p.communicate(timeout=300)[0] for p in (holder, waiter)]
    assert [p.returncode for p in (holder, waiter)] == [0, 0], outputs
    assert still_waiting, "the slot came free during the measurement; nothing was measured"
    assert busy < 0.3, f"the waiting run used {busy:.0%} of a core"
    landed = Counter(u["meta"]["dataset_key"] for u in synapse_env.units(collection))
    assert len(landed) == 2 * UNITS and set(landed.values()) == {1}


def test_a_run_silent_on_another_host_is_freed_once_its_heartbeat_is_stale(tmp_path, synapse_env, collection):
    """A run on another host sharing the instance: no PID to look at here, only its heartbeat tag."""
    host = pooled_host(tmp_path, collection, "silent", ["b001", "b002"], pool_limit=1)
    synapse_env.set_faults(SLOW_PUTS)
    try:
        victim = host.start("b001", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: pool_info(host).active_slot_count == 1, "the run holds the slot")
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=30)
    finally:
        synapse_env.set_faults([])
    with host.instance() as instance:
        (run,) = instance.get_runs()
        assert run.tags[HEARTBEAT_TAG]  # it was beating
        instance.add_run_tags(run.run_id, {HOST_TAG: "another-host", HEARTBEAT_TAG: str(int(time.time()) - 30)})
        assert reap_dead_runs(instance) == []  # silent for 30 s: it may be alive, its slot stays taken
        instance.add_run_tags(run.run_id, {HEARTBEAT_TAG: str(int(time.time()) - 2 * STALE_AFTER_S)})
        assert reap_dead_runs(instance) == [run.run_id]
        assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE
        assert instance.event_log_storage.get_concurrency_info(POOL).active_slot_count == 0
    rerun = host.run("b001", timeout=120)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    landed = Counter(u["meta"]["dataset_key"] for u in synapse_env.units(collection))
    assert len(landed) == UNITS and set(landed.values()) == {1}
