"""Every benchmark in one go, one table at the end (``scripts/bench`` with no argument; not a test).

Each benchmark module exposes ``rows(...)``, which measures and returns its rows. This runs each one in a fresh
interpreter of its own (``--one NAME``), as ``scripts/bench NAME`` would, so no benchmark inherits another's
imports or memory (a child of a big process reports the parent's RSS as its own), collects the rows as JSON,
and prints the single table last (stdout; progress goes to stderr as it comes). A benchmark that fails becomes
one failed row with its error, so the others still report. ``--smoke`` runs every benchmark at a tiny size to
check the harness, not to measure anything.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import socket
import subprocess
import sys
import time

from synapse_dagster_tests.benchmarks.table import Figure, Row, failed_row, print_table

MODULE = "synapse_dagster_tests.benchmarks.run_all"
PACKAGE = "synapse_dagster_tests.benchmarks"
# name: (module, the sizes scripts/bench measures, the sizes --smoke uses)
BENCHES: dict[str, tuple[str, dict, dict]] = {
    "planning": ("bench_planning", {"sizes": (100_000, 1_000_000)}, {"sizes": (2000,)}),
    "listing": ("bench_listing", {"objects": 100_000}, {"objects": 2000, "runs": 1}),
    "delivery": ("bench_delivery", {"units": (2000, 10_000)}, {"units": (50,), "repeats": 1}),
    "sensor": ("bench_sensor_tick", {"batches": 1000, "objects_per_batch": 100, "repeats": 5},
               {"batches": 20, "objects_per_batch": 10, "repeats": 2}),
    "reconcile": ("bench_reconcile", {"units": 100_000}, {"units": 1000}),
}
# the long ones last, so a run stopped early has reported the others (each bench's rows also go to stderr as
# it ends); the table keeps BENCHES' order
RUN_ORDER = ("delivery", "sensor", "reconcile", "listing", "planning")
LISTING_PORT = 8333  # bench_listing's S3_PORT: weed mini's fixed S3 port


def measure_one(name: str, smoke: bool) -> list[Row]:
    """In the child: the benchmark's rows, with only its own module imported."""
    module, full, tiny = BENCHES[name]
    kwargs = tiny if smoke else full
    if name == "listing" and _port_taken(LISTING_PORT):
        return [failed_row(f"listing {kwargs['objects']:,} S3 objects (SeaweedFS)", "list_files",
                           "bare list_objects_v2 paginator",
                           f"127.0.0.1:{LISTING_PORT} (weed mini's fixed S3 port) is taken by another server; "
                           "not measured, so as not to write into it")]
    return importlib.import_module(f"{PACKAGE}.{module}").rows(**kwargs)


def _port_taken(port: int) -> bool:
    """bench_listing's start-up takes whatever listens on its port for its own SeaweedFS and writes into it."""
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def run_one(name: str, smoke: bool) -> list[Row]:
    """A benchmark in a fresh interpreter; its rows come back as the last line of its stdout."""
    command = [sys.executable, "-m", MODULE, "--one", name] + (["--smoke"] if smoke else [])
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        return [failed_row(name, "its contender", "its baseline",
                           f"the benchmark exited {done.returncode} (its error is above, on stderr)")]
    return [row_from_dict(d) for d in json.loads(lines[-1])]


def row_from_dict(data: dict) -> Row:
    figures = {k: Figure(**data[k]) if data[k] else None for k in ("wall", "cpu", "rss")}
    return Row(**{**data, **figures})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: check the harness, measure nothing")
    parser.add_argument("--one", choices=BENCHES, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps([dataclasses.asdict(r) for r in measure_one(args.one, args.smoke)]))
        return 0
    found: dict[str, list[Row]] = {}
    for name in RUN_ORDER:
        started = time.perf_counter()
        print(f"== {name}", file=sys.stderr, flush=True)
        found[name] = run_one(name, args.smoke)
        print_table(found[name], out=sys.stderr)
        print(f"== {name} took {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    rows = [row for name in BENCHES for row in found[name]]
    print_table(rows)
    return 1 if any(r.failed for r in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
