"""How a batch's delivery scales with Ray workers on this machine (not a test): ``engine: ray`` with 1, 2 and 4
worker CPUs against ``engine: local``, in the same run on the same data.

Each run is ``synapse-dagster ingest`` as a user starts it (the delivery benchmark's batch: N units of a ~100 KB
PNG and a JSON label), against a fresh sandbox process, and with ``engine: ray`` a fresh local cluster (``ray
start --head --num-cpus W``: W worker processes run shards at once; the plan is cut into 8 shards). Every shard,
like the local run, uploads over ``--per-worker`` connections. Two regimes:

* ``storage on this host``: PUTs answered at once; the two cores are shared by the sandbox, the driver and the
  workers, so this shows the machine's ceiling, not Ray's;
* ``storage 50 ms away``: every PUT held 50 ms by the sandbox (``--latency-ms``), as a bucket in another zone
  answers; one process's connections are then the bound, which is what more workers (more hosts, on a cluster)
  lift.

Rows show wall time against the local engine; the detail has units/s, the speed-up over one worker, and how busy
the machine's CPUs were (all processes, from /proc/stat), since Ray's workers are not the driver's children and a
client CPU column would leave them out. Every run is checked through the real ``BackendClient``: exactly N units
with their files, or the row fails.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import yaml

from synapse_dagster_tests.benchmarks.bench_delivery import (
    Batch, command, compile_checkout, delivered, environment, fresh_sandbox, make_batch, prepare_project, run_child)
from synapse_dagster_tests.benchmarks.table import Figure, Row, failed_row, print_table
from synapse_dagster_tests.servers.ray import RAY_ENV, ray_head

SHARDS = 8
PUT_ROUTE = "^_storage/upload/"


@dataclass
class Run:
    engine: str  # "local" or "ray W"
    wall_s: float = 0.0
    busy: float = 0.0  # machine CPU busy over the run, in cores
    failed: str | None = None


def machine_busy_s() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]
    tick = os.sysconf("SC_CLK_TCK")
    return (sum(fields) - idle) / tick, sum(fields) / tick


def hold_puts(url: str, token: str, latency_ms: int) -> None:
    rules = [{"match": {"method": "PUT", "path": PUT_ROUTE}, "action": "latency", "latency_ms": latency_ms}]
    request = urllib.request.Request(f"{url}/_sandbox/faults", data=json.dumps({"rules": rules}).encode(),
                                     method="PUT", headers={"Synapse-Access-Token": f"Token {token}",
                                                            "Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=30).close()


def set_engine(run_dir: Path, workers: int, per_worker: int, units: int) -> None:
    path = run_dir / "pipelines.yaml"
    config = yaml.safe_load(path.read_text())
    pipeline = config["pipelines"][0]
    pipeline["upload_max_workers"] = per_worker
    if workers:
        pipeline["engine"] = {"kind": "ray", "units_per_shard": -(-units // SHARDS), "max_shards_in_flight": SHARDS}
    path.write_text(yaml.safe_dump(config))


def run_once(batch: Batch, work: Path, workers: int, per_worker: int, latency_ms: int) -> Run:
    """One ingest on a fresh sandbox (and with ``workers``, a fresh cluster), then the check of what landed."""
    run = Run(f"ray {workers}" if workers else "local")
    run_dir = Path(tempfile.mkdtemp(prefix=f"{run.engine.replace(' ', '')}-", dir=work))
    with contextlib.ExitStack() as stack:
        url, token, _pid = stack.enter_context(fresh_sandbox(batch, run_dir))
        env = prepare_project(batch, run_dir, environment(url, token, run_dir))
        if workers:
            temp = Path(tempfile.mkdtemp(prefix="ray-"))  # short: Ray's socket paths must fit in 107 bytes
            env["RAY_ADDRESS"] = stack.enter_context(ray_head(workers, env, temp))
            env.update(RAY_ENV)
        set_engine(run_dir, workers, per_worker, batch.units)
        if latency_ms:
            hold_puts(url, token, latency_ms)
        log = run_dir / "output.log"
        busy0, total0 = machine_busy_s()
        done = run_child(command("project", batch, run_dir, 0), env, run_dir, log, timeout_s=600 + batch.units)
        busy1, total1 = machine_busy_s()
        run.wall_s, run.busy = done.get("wall_s", 0.0), (busy1 - busy0) / max(done.get("wall_s", 1.0), 1e-6)
        run.failed = (f"exit {done['exit']} (log: {log})" if done["exit"] != 0 else delivered(url, token, batch))
    if not run.failed:
        shutil.rmtree(run_dir, ignore_errors=True)
    return run


def rows_for(regime: str, units: int, runs: list[Run], per_worker: int) -> list[Row]:
    topic = f"ray scaling {units:,} units, {regime}"
    local, by_workers = runs[0], runs[1:]
    one = by_workers[0]
    out = []
    for run in by_workers:
        if run.failed or local.failed:
            out.append(failed_row(topic, run.engine + " worker(s)", "local engine", run.failed or local.failed))
            continue
        speedup = one.wall_s / run.wall_s if not one.failed else float("nan")
        out.append(Row(topic, f"{run.engine} worker(s)", "local engine", wall=Figure(run.wall_s, local.wall_s, "s"),
                       detail=f"{units / run.wall_s:,.0f} vs {units / local.wall_s:,.0f} units/s; {speedup:.2f}x the "
                              f"speed of 1 worker; machine CPU busy {run.busy:.2f} of {os.cpu_count()} cores (local "
                              f"{local.busy:.2f}); {per_worker} connections per shard"))
    return out


def measure(batch: Batch, work: Path, workers: list[int], per_worker: int, latency_ms: int) -> list[Run]:
    runs = []
    for w in [0, *workers]:
        run = run_once(batch, work, w, per_worker, latency_ms)
        state = f"FAILED: {run.failed}" if run.failed else f"{run.wall_s:.1f} s, CPU busy {run.busy:.2f} cores"
        print(f"  {batch.units:,} units, PUT latency {latency_ms} ms, {run.engine}: {state}", file=sys.stderr, flush=True)
        runs.append(run)
    return runs


def rows(units: int = 2000, workers: tuple[int, ...] = (1, 2, 4), per_worker: int = 4,
         latency_ms: int = 50) -> list[Row]:
    compile_checkout()
    out: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="bench-ray-") as tmp:
        batch = make_batch(Path(tmp), units)
        work = Path(tmp) / "runs"
        work.mkdir()
        for regime, latency in (("storage on this host", 0), (f"storage {latency_ms} ms away", latency_ms)):
            out += rows_for(regime, units, measure(batch, work, list(workers), per_worker, latency), per_worker)
        if any(r.failed for r in out):
            kept = Path(tempfile.mkdtemp(prefix="bench-ray-failed-"))
            shutil.copytree(work, kept, dirs_exist_ok=True)
            print(f"failed runs kept in {kept}", file=sys.stderr)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--units", type=int, default=2000)
    parser.add_argument("--workers", type=lambda s: tuple(int(x) for x in s.split(",")), default=(1, 2, 4))
    parser.add_argument("--per-worker", type=int, default=4, help="upload connections per shard (and locally)")
    parser.add_argument("--latency-ms", type=int, default=50, help="PUT latency of the far-storage regime")
    args = parser.parse_args(argv)
    table = rows(args.units, args.workers, args.per_worker, args.latency_ms)
    print_table(table)
    return 1 if any(r.failed for r in table) else 0


if __name__ == "__main__":
    raise SystemExit(main())
