"""The production instance: Dagster on Postgres with the daemon, as ``deploy/dagster-postgres.yaml`` sets it up.

A real Postgres cluster holds the run, event-log and schedule storage and the ledger; ``dagster-daemon run``
ticks each pipeline's sensor, queues the runs it asks for, and launches them as their own processes within the
queue's limits. The test checks what landed in the sandbox and, from the run records, that the limits held.
"""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import dagster as dg
import pytest
import yaml

from synapse_dagster_tests.cli.ingest_hosts import write_batch
from synapse_dagster_tests.conftest import new_collection

REPO = Path(__file__).resolve().parents[2]
PIPELINES, BATCHES, UNITS = ("ward_a", "ward_b", "ward_c"), ("b001", "b002"), 3
LIMIT_INGEST, LIMIT_PER_PIPELINE = 4, 2  # what deploy/dagster-postgres.yaml says


def pg_env(postgres_server, database_url: str) -> dict[str, str]:
    database = database_url.rsplit("/", 1)[1]
    return {"DAGSTER_PG_HOST": "127.0.0.1", "DAGSTER_PG_PORT": str(postgres_server.port),
            "DAGSTER_PG_USER": "postgres", "DAGSTER_PG_PASSWORD": postgres_server.password, "DAGSTER_PG_DB": database,
            "SYNAPSE_DAGSTER_LEDGER_URL": database_url}  # the ledger shares Dagster's database


def write_pipelines(root: Path, collections: dict[str, int]) -> Path:
    pipelines = []
    for seed, name in enumerate(PIPELINES):
        for batch in BATCHES:
            folder = root / name / batch
            write_batch(folder, UNITS, 300 + 10 * seed + BATCHES.index(batch), name)
            (folder / "_READY").write_text("")
        pipelines.append({
            "name": name, "data_collection": collections[name], "storage": 1,
            "source": {"path": str(root / name)}, "metadata": {"key_column": "patient_id"},
            "batches": {"ready_marker": "_READY"},
            "sensor": {"default_status": "running", "minimum_interval_seconds": 5, "on_first_pass": "run"}})
    path = root / "pipelines.yaml"
    path.write_text(yaml.safe_dump({"pipelines": pipelines}))
    return path


def most_at_once(intervals: list[tuple[float, float]]) -> int:
    """The most intervals that overlap at one moment."""
    edges = sorted(itertools.chain(((s, 1) for s, _ in intervals), ((e, -1) for _, e in intervals)),
                   key=lambda edge: (edge[0], edge[1]))
    return max(itertools.accumulate(step for _, step in edges), default=0)


def wait_for_runs(instance: dg.DagsterInstance, count: int, daemon: subprocess.Popen, log: Path,
                  timeout: float) -> list[dg.RunRecord]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        records = instance.get_run_records()
        if len(records) >= count and all(r.dagster_run.is_finished for r in records):
            return records
        if daemon.poll() is not None:
            pytest.fail(f"the daemon exited {daemon.returncode}: {log.read_text()[-3000:]}")
        time.sleep(1)
    states = Counter(r.dagster_run.status.value for r in instance.get_run_records())
    pytest.fail(f"{count} finished runs expected within {timeout:.0f} s, found {dict(states)}; daemon log: "
                f"{log.read_text()[-3000:]}")


def test_sensor_ticks_queue_runs_that_land_every_unit_within_the_queue_limits(
        tmp_path, synapse_env, postgres_server, monkeypatch):
    collections = {name: new_collection(synapse_env) for name in PIPELINES}
    pipelines = write_pipelines(tmp_path / "sources", collections)
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "deploy" / "dagster-postgres.yaml", home / "dagster.yaml")
    env = {**pg_env(postgres_server, postgres_server.new_database("dagster")), "DAGSTER_HOME": str(home),
           "SYNAPSE_DAGSTER_PIPELINES": str(pipelines), "SYNAPSE_DAGSTER_STATE_DIR": str(tmp_path / "state")}
    for key, value in env.items():
        monkeypatch.setenv(key, value)

    log = tmp_path / "daemon.log"
    with open(log, "wb") as out:
        daemon = subprocess.Popen([str(Path(sys.executable).with_name("dagster-daemon")), "run", "-w", str(REPO / "workspace.yaml")],
                                  cwd=REPO, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    try:
        with dg.DagsterInstance.get() as instance:
            records = wait_for_runs(instance, len(PIPELINES) * len(BATCHES), daemon, log, timeout=420)
    finally:
        os.killpg(daemon.pid, signal.SIGTERM)
        daemon.wait(60)

    assert instance.run_storage.__class__.__name__ == "PostgresRunStorage"
    assert {r.dagster_run.status for r in records} == {dg.DagsterRunStatus.SUCCESS}, [
        (r.dagster_run.tags.get("synapse/pipeline"), r.dagster_run.status.value) for r in records]
    ran = Counter((r.dagster_run.tags["synapse/pipeline"], r.dagster_run.tags["dagster/partition"]) for r in records)
    assert ran == Counter({(p, b): 1 for p in PIPELINES for b in BATCHES})  # each batch once, no repeats
    for name, collection in collections.items():
        units = synapse_env.units(collection)
        assert len(units) == UNITS * len(BATCHES), name
        assert len({u["meta"]["dataset_key"] for u in units}) == UNITS * len(BATCHES), name

    spans = [(r.start_time, r.end_time, r.dagster_run.tags["synapse/pipeline"]) for r in records]
    overall = most_at_once([(s, e) for s, e, _ in spans])
    per_pipeline = {p: most_at_once([(s, e) for s, e, q in spans if q == p]) for p in PIPELINES}
    assert 2 <= overall <= LIMIT_INGEST, spans  # ingest runs did run side by side, never more than the limit
    assert max(per_pipeline.values()) <= LIMIT_PER_PIPELINE, per_pipeline
