"""Runs whose process died let go: their pool slots and pending claims are freed, and they show as failed.

A SIGKILLed run never writes its end, so Dagster keeps it STARTED and holding its ``synapse_api`` slots; with a
pool of 2, two such runs block every later run for good. Dagster's run monitoring detects dead run workers only
for launchers that can check a worker's health (Kubernetes, Docker, ECS), not for the default launcher that
``dagster dev`` and a single-host daemon use, nor for ``synapse-dagster ingest``, which runs in process. So each
run records its host and run-worker PID as tags, and every CLI run and sensor tick first marks this host's
STARTED runs whose process is gone as failed and frees what they held.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable

import dagster as dg

from synapse_dagster.core.processes import process_alive, this_host

HOST_TAG = "synapse_dagster/host"
PID_TAG = "synapse_dagster/pid"


def run_worker_tags() -> dict[str, str]:
    """This run worker's host and PID; in a step process of the multiprocess executor, its parent's."""
    parent = multiprocessing.parent_process()
    return {HOST_TAG: this_host(), PID_TAG: str(parent.pid if parent is not None and parent.pid else os.getpid())}


def record_run_worker(instance: dg.DagsterInstance, run: dg.DagsterRun | None) -> None:
    """Tag a run launched elsewhere (a daemon, the UI) with its worker, once."""
    if run is not None and PID_TAG not in run.tags:
        instance.add_run_tags(run.run_id, run_worker_tags())


def reap_dead_runs(instance: dg.DagsterInstance, log: Callable[[str], None] | None = None) -> list[str]:
    """Fail this host's STARTED runs whose worker process is gone and free their concurrency slots."""
    host = this_host()
    runs = instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED], tags={HOST_TAG: host}))
    reaped = []
    for run in runs:
        pid = int(run.tags.get(PID_TAG, "0") or 0)
        if pid <= 0 or process_alive(pid):
            continue
        message = f"run {run.run_id} died: its process (pid {pid} on {host}) is gone; freeing its pool slots"
        instance.report_run_failed(run, message)
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        reaped.append(run.run_id)
        if log is not None:
            log(message)
    return reaped
