"""Every benchmark in one go, one table at the end (``scripts/bench`` with no argument; not a test).

Each benchmark module exposes ``rows(...)``, which measures and returns its rows; this calls them in turn with
the sizes below, prints their progress as it goes (stderr) and the single table last (stdout). A benchmark that
raises becomes one failed row with its error, so the others still report. ``--smoke`` runs every benchmark at a
tiny size to check the harness, not to measure anything.
"""

from __future__ import annotations

import argparse
import socket
import sys
import time
import traceback
from collections.abc import Callable

from synapse_dagster_tests.benchmarks import (bench_delivery, bench_listing, bench_planning, bench_reconcile,
                                              bench_sensor_tick)
from synapse_dagster_tests.benchmarks.table import Row, failed_row, print_table

def listing_rows(objects: int) -> list[Row]:
    """bench_listing's rows, unless its fixed S3 port already answers: its start-up would take whatever listens
    there (another SeaweedFS) for its own and write its objects into it."""
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", bench_listing.S3_PORT)) == 0:
            return [failed_row(f"listing {objects:,} S3 objects (SeaweedFS)", "list_files", "bare list_objects_v2 paginator",
                               f"127.0.0.1:{bench_listing.S3_PORT} (weed mini's fixed S3 port) is taken by another "
                               "server; not measured, so as not to write into it")]
    return bench_listing.rows(objects)


FULL: list[tuple[str, Callable[[], list[Row]]]] = [
    ("planning", lambda: bench_planning.rows((100_000, 1_000_000))),
    ("listing", lambda: listing_rows(100_000)),
    ("delivery", lambda: bench_delivery.rows((2000, 10_000))),
    ("sensor", lambda: bench_sensor_tick.rows(1000, 100, 5)),
    ("reconcile", lambda: bench_reconcile.rows(100_000)),
]
SMOKE: list[tuple[str, Callable[[], list[Row]]]] = [
    ("planning", lambda: bench_planning.rows((2000,))),
    ("listing", lambda: listing_rows(2000)),
    ("delivery", lambda: bench_delivery.rows((50,), repeats=1)),
    ("sensor", lambda: bench_sensor_tick.rows(20, 10, 2)),
    ("reconcile", lambda: bench_reconcile.rows(1000)),
]


def collect(benchmarks: list[tuple[str, Callable[[], list[Row]]]]) -> list[Row]:
    rows: list[Row] = []
    for name, run in benchmarks:
        started = time.perf_counter()
        print(f"== {name}", file=sys.stderr, flush=True)
        try:
            rows += run()
        except Exception as exc:  # one broken benchmark must not hide the others' rows
            traceback.print_exc()
            rows.append(failed_row(name, "its contender", "its baseline", f"{type(exc).__name__}: {exc}"))
        print(f"== {name} took {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: check the harness, measure nothing")
    args = parser.parse_args(argv)
    rows = collect(SMOKE if args.smoke else FULL)
    print_table(rows)
    return 1 if any(r.failed for r in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
