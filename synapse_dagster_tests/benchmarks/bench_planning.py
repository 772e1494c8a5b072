"""What planning a big batch costs, per file, against a bare walk of the same tree (not a test).

Planning is what ``synapse-dagster plan`` and the first four assets do: list the source into the batch's inventory
table, detect the pattern, group files into units and build and validate each unit's meta (files are not opened:
that happens once, when they are uploaded). The baseline is the least any planner must do: an ``os.scandir`` walk
with one ``stat`` per file. Each is measured in a fresh interpreter of its own, on the same tree, in the same run,
as CPU time and peak RSS; a third interpreter that only imports the planner gives what the imports take (CPU and
memory), so the figures per file are the planner's own.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from synapse_dagster_tests.benchmarks.table import Figure, Row, print_table

MODULE = "synapse_dagster_tests.benchmarks.bench_planning"
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 120


def make_tree(root: Path, files: int) -> None:
    """``files`` files in nested unit folders: a PNG and a JSON label each, 500 units per parent folder."""
    for unit in range(files // 2):
        folder = root / f"U{unit:07d}"
        folder.mkdir(parents=True)
        (folder / "scan.png").write_bytes(PNG)
        (folder / "label.json").write_bytes(b'{"boxes": []}')


def bare_walk(root: str) -> int:
    count, stack = 0, [root]
    while stack:
        with os.scandir(stack.pop()) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                else:
                    entry.stat()
                    count += 1
    return count


def plan(root: str) -> int:
    from synapse_dagster.core.organize.detection import choose_pattern
    from synapse_dagster.core.organize.grouping import Organization, group_files
    from synapse_dagster.core.organize.layouts import SpecNames
    from synapse_dagster.core.organize.specs import CollectionSpecs
    from synapse_dagster.core.plan.batch_plan import PlanSettings, plan_batch
    from synapse_dagster.core.sources.files import FILE_CODEC
    from synapse_dagster.core.sources.listing import list_files
    from synapse_dagster.core.sources.location import SourceLocation
    from synapse_dagster.core.tables.row_table import Spill
    from synapse_sandbox.demo_data import demo_seed

    specs = CollectionSpecs.from_api(demo_seed("unused")["data_collections"][0])
    spill = Spill()
    files = spill.table("inventory", FILE_CODEC, list_files(SourceLocation("local", path=root)))
    detection = choose_pattern(None, files, SpecNames(specs))
    grouping = group_files(files, specs, Organization(pattern=detection.pattern), spill=spill)
    result = plan_batch(grouping, specs, "bench", PlanSettings("bench"), spill=spill)
    return sum(result.units.values("total_bytes")) and len(files)


def imports_only(root: str) -> int:
    import synapse_dagster.core.organize.detection  # noqa: F401
    import synapse_dagster.core.plan.batch_plan  # noqa: F401
    import synapse_dagster.core.sources.listing  # noqa: F401
    import synapse_sandbox.demo_data  # noqa: F401

    return 0


def child(task: str, root: str) -> None:
    started = time.perf_counter()
    count = {"bare": bare_walk, "plan": plan, "imports": imports_only}[task](root)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"count": count, "cpu_s": usage.ru_utime + usage.ru_stime, "wall_s": time.perf_counter() - started,
                      "peak_kb": usage.ru_maxrss}))


def measure(task: str, root: Path) -> dict:
    done = subprocess.run([sys.executable, "-m", MODULE, "--child", task, str(root)], capture_output=True, text=True,
                          check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def rows(sizes: tuple[int, ...] = (100_000, 1_000_000)) -> list[Row]:
    """One row per tree size: planning against the bare walk, each tree made, measured and deleted in turn."""
    out = []
    for n in sizes:
        with tempfile.TemporaryDirectory(prefix="bench-planning-") as tmp:
            root = Path(tmp) / "batch"
            started = time.perf_counter()
            make_tree(root, n)
            print(f"made {n:,} files in {time.perf_counter() - started:.0f} s", file=sys.stderr)
            bare_walk(str(root))  # untimed: the first walk of a new tree waits for the disk, and would flatter planning
            bare, base, planned = measure("bare", root), measure("imports", root), measure("plan", root)
            out.append(planning_row(n, bare, base, planned))
            print_table(out[-1:], sys.stderr)  # the row now: deleting a 1M-file tree takes minutes
            print("deleting the tree", file=sys.stderr)
    return out


def planning_row(n: int, bare: dict, base: dict, planned: dict) -> Row:
    """CPU and peak RSS against the walk; per file, and the planner's memory growth over its imports, as detail."""
    over = (planned["cpu_s"] - base["cpu_s"] - bare["cpu_s"]) / n * 1e6  # the imports' one-time CPU not counted
    growth = (planned["peak_kb"] - base["peak_kb"]) / n
    return Row(f"planning {n:,} files", "plan (list, detect, group, meta, validate)", "bare scandir + stat walk",
               wall=Figure(planned["wall_s"], bare["wall_s"], "s"), cpu=Figure(planned["cpu_s"], bare["cpu_s"], "s"),
               rss=Figure(planned["peak_kb"] / 1024, bare["peak_kb"] / 1024, "MB"),
               detail=f"CPU {planned['cpu_s'] / n * 1e6:.1f} vs {bare['cpu_s'] / n * 1e6:.1f} µs/file "
                      f"(+{over:.1f} µs/file over the walk, not counting {base['cpu_s']:.1f} s of imports); memory growth {growth:.2f} KB/file over the planner's imports")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--child", nargs=2, metavar=("TASK", "ROOT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(*args.child)
        return 0
    print_table(rows(tuple(args.files)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
