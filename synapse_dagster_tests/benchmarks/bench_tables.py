"""Why a batch's tables are SQLite files and not Arrow or pandas frames (not a test).

What the tables must do: take rows one at a time while a listing streams (a million of them), then give them back
sorted by unit key, one unit after another, in memory that does not grow with the batch. Each contender does that
with the same rows in a fresh interpreter; the baseline is the plain Python way (a list of tuples, ``sorted``).
pyarrow and pandas are installed on first use if they are missing (the project itself does not need them).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time

MODULE = "synapse_dagster_tests.benchmarks.bench_tables"
CHUNK = 65_536


def rows(n: int):
    for i in range(n):
        unit = (i * 7919) % max(1, n // 2)
        yield (f"U{unit:07d}", "image" if i % 2 else "label", i, f"U{unit:07d}/{'scan.png' if i % 2 else 'label.json'}",
               1234 + i, 1_700_000_000_000_000_000 + i)


def python_lists(n: int) -> int:
    return sum(1 for _ in sorted(rows(n), key=lambda r: (r[0], r[1], r[2])))


def sqlite_table(n: int) -> int:
    from synapse_dagster.core.tables.row_table import Codec, Spill

    codec = Codec("bench", ("key", "spec", "seq", "path", "size", "mtime"), tuple, tuple)
    table = Spill().table("bench", codec, rows(n))
    return sum(1 for _ in table.ordered("key, spec, seq"))


def arrow_table(n: int) -> int:
    import pyarrow as pa
    import pyarrow.compute as pc

    names = ["key", "spec", "seq", "path", "size", "mtime"]
    batches, columns = [], [[] for _ in names]
    for row in rows(n):
        for column, value in zip(columns, row):
            column.append(value)
        if len(columns[0]) == CHUNK:
            batches.append(pa.record_batch([pa.array(c) for c in columns], names=names))
            columns = [[] for _ in names]
    batches.append(pa.record_batch([pa.array(c) for c in columns], names=names))
    table = pa.Table.from_batches(batches)
    del batches
    ordered = table.take(pc.sort_indices(table, sort_keys=[("key", "ascending"), ("spec", "ascending"),
                                                            ("seq", "ascending")]))
    del table
    return sum(len(list(zip(*(b.column(i).to_pylist() for i in range(len(names)))))) for b in ordered.to_batches(CHUNK))


def pandas_frame(n: int) -> int:
    import pandas as pd
    import pyarrow as pa

    names = ["key", "spec", "seq", "path", "size", "mtime"]
    frames, chunk = [], []
    for row in rows(n):
        chunk.append(row)
        if len(chunk) == CHUNK:
            frames.append(pd.DataFrame(chunk, columns=names).convert_dtypes(dtype_backend="pyarrow"))
            chunk = []
    frames.append(pd.DataFrame(chunk, columns=names).convert_dtypes(dtype_backend="pyarrow"))
    frame = pd.concat(frames, ignore_index=True)
    del frames
    assert isinstance(frame.dtypes.iloc[0], pd.ArrowDtype) and pa is not None
    ordered = frame.sort_values(["key", "spec", "seq"], kind="stable")
    del frame
    return sum(1 for _ in ordered.itertuples(index=False))


CONTENDERS = {"python": python_lists, "sqlite": sqlite_table, "arrow": arrow_table, "pandas": pandas_frame}
LABELS = {"python": "Python list + sorted() (baseline)", "sqlite": "SQLite table, ORDER BY (the project's RowTable)",
          "arrow": "pyarrow Table, sort_indices + take", "pandas": "pandas (ArrowDtype), sort_values"}


def child(task: str, n: int) -> None:
    import synapse_dagster.core.tables.row_table  # noqa: F401  (imports are not the contender's cost)

    if task in ("arrow", "pandas"):
        import pandas  # noqa: F401
        import pyarrow  # noqa: F401
    start_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    cpu = time.process_time()
    count = CONTENDERS[task](n)
    print(json.dumps({"count": count, "cpu_s": time.process_time() - cpu,
                      "growth_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - start_kb}))


def ensure_frames() -> None:
    try:
        import pandas  # noqa: F401
        import pyarrow  # noqa: F401
    except ImportError:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "pandas", "pyarrow"], check=True)


def measure(task: str, n: int) -> dict:
    done = subprocess.run([sys.executable, "-m", MODULE, "--child", task, str(n)], capture_output=True, text=True,
                          check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--child", nargs=2, metavar=("TASK", "ROWS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child[0], int(args.child[1]))
        return 0
    ensure_frames()
    with tempfile.TemporaryDirectory():
        results = {task: measure(task, args.rows) for task in CONTENDERS}
    base = results["python"]
    n = args.rows
    print(f"\nwriting {n:,} rows as they stream, then reading them back sorted by unit key")
    print(f"{'':50} {'CPU µs/row':>10} {'x baseline':>10} {'growth KB/row':>14} {'x baseline':>10}")
    for task, row in results.items():
        assert row["count"] == n, f"{task} returned {row['count']} rows of {n}"
        print(f"{LABELS[task]:50} {row['cpu_s'] / n * 1e6:10.2f} {row['cpu_s'] / base['cpu_s']:10.2f} "
              f"{row['growth_kb'] / n:14.3f} {row['growth_kb'] / max(1, base['growth_kb']):10.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
