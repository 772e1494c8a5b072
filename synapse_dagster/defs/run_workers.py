"""Runs whose process died let go: their pool slots and pending claims are freed, and they show as failed.

A SIGKILLed run never writes its end, so Dagster keeps it STARTED and holding its ``synapse_api`` slots; with a
pool of 2, two such runs block every later run for good. Dagster's run monitoring detects dead run workers only
for launchers that can check a worker's health (Kubernetes, Docker, ECS), not for the default launcher that
``dagster dev`` and a single-host daemon use, nor for ``synapse-dagster ingest``, which runs in process. So each
run records its host and run-worker PID as tags and beats a heartbeat tag every 20 s; every CLI run and sensor
tick first marks as failed, and frees what they held, the STARTED runs whose process is gone from this host or
whose heartbeat stopped over 90 s ago on any host sharing the instance.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Callable

import dagster as dg

from synapse_dagster.core.processes import process_alive, this_host

HOST_TAG = "synapse_dagster/host"
PID_TAG = "synapse_dagster/pid"
HEARTBEAT_TAG = "synapse_dagster/heartbeat"  # unix seconds of the run worker's last beat
HEARTBEAT_EVERY_S = 20.0
STALE_AFTER_S = 90.0
_beating: set[tuple[int, str]] = set()
_beating_lock = threading.Lock()


def run_worker_tags() -> dict[str, str]:
    """This run worker's host and PID; in a step process of the multiprocess executor, its parent's."""
    parent = multiprocessing.parent_process()
    return {HOST_TAG: this_host(), PID_TAG: str(parent.pid if parent is not None and parent.pid else os.getpid())}


def record_run_worker(instance: dg.DagsterInstance, run: dg.DagsterRun | None) -> None:
    """Tag a run launched elsewhere (a daemon, the UI) with its worker, once; start its heartbeat."""
    if run is None:
        return
    if PID_TAG not in run.tags:
        instance.add_run_tags(run.run_id, run_worker_tags())
    with _beating_lock:
        if (os.getpid(), run.run_id) in _beating:
            return
        _beating.add((os.getpid(), run.run_id))
    threading.Thread(target=_beat, args=(instance, run.run_id), daemon=True, name="synapse-run-heartbeat").start()


def _beat(instance: dg.DagsterInstance, run_id: str) -> None:
    failures = 0
    while failures < 3:  # the instance went away (a test's, or the process is ending): stop
        try:
            run = instance.get_run_by_id(run_id)
            if run is None or run.is_finished:
                return
            instance.add_run_tags(run_id, {HEARTBEAT_TAG: str(int(time.time()))})
            failures = 0
        except Exception:  # a missed beat only brings the stale mark nearer; the run goes on
            failures += 1
        time.sleep(HEARTBEAT_EVERY_S)


def reap_dead_runs(instance: dg.DagsterInstance, log: Callable[[str], None] | None = None) -> list[str]:
    """Fail the STARTED runs whose worker is dead and free their concurrency slots."""
    reaped = []
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])):
        why = death_of(run)
        if why is None:
            continue
        message = f"run {run.run_id} died: {why}; freeing its pool slots"
        instance.report_run_failed(run, message)
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        reaped.append(run.run_id)
        if log is not None:
            log(message)
    return reaped


def death_of(run: dg.DagsterRun, now: float | None = None) -> str | None:
    """Why ``run``'s worker is known to be dead, or None while it may be alive (or records nothing)."""
    host, pid = run.tags.get(HOST_TAG), int(run.tags.get(PID_TAG, "0") or 0)
    if host == this_host() and pid > 0 and not process_alive(pid):
        return f"its process (pid {pid} on {host}) is gone"
    beat = run.tags.get(HEARTBEAT_TAG, "")
    silent = (now or time.time()) - float(beat) if beat.replace(".", "", 1).isdigit() else 0.0
    if silent > STALE_AFTER_S:
        return f"its worker on {host or 'another host'} has not beaten its heartbeat for {silent:.0f} s"
    return None
