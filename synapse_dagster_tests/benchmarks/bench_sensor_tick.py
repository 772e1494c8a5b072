"""Benchmark: a sensor tick on a prefix holding 100k objects vs. an empty prefix vs. a full listing.

Run with ``scripts/bench`` (not part of the test suite). A real S3 server (moto, on a free port) holds
``BATCHES`` batch folders of ``OBJECTS_PER_BATCH`` objects each under ``big/``; ``empty/`` holds nothing.
After the sensor's first pass has registered the existing batches, one new batch of 100 objects lands
in each prefix and one tick is timed on each. The full ListObjectsV2 listing of ``big/`` (what
Dagster's helpers do every tick) is timed in the same run. Objects are created through moto's
in-process backend to keep setup short; every measured request goes over HTTP.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import dagster as dg

from synapse_dagster_tests.benchmarks.table import Figure, Row, print_table


def populate(bucket: str, prefix: str, batches: range, objects: int) -> None:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
    for b in batches:
        batch = f"{prefix}b{b:06d}/"
        for i in range(objects):
            backend.put_object(bucket, f"{batch}P{i:04d}.png", b"x")
        backend.put_object(bucket, f"{batch}_READY", b"")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batches", type=int, default=1000)
    parser.add_argument("--objects-per-batch", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    print_table(rows(args.batches, args.objects_per_batch, args.repeats))
    return 0


def rows(batches: int = 1000, objects_per_batch: int = 100, repeats: int = 5) -> list[Row]:
    """The tick on the full prefix against the tick on an empty one, and against a full listing of the prefix."""
    import botocore.session
    from moto.server import ThreadedMotoServer

    from synapse_dagster.definitions import build_definitions
    from synapse_dagster.config.loading import parse_pipeline_file
    from synapse_dagster.defs.resources import SourcesResource, SynapseResource

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    s3 = botocore.session.get_session().create_client("s3", endpoint_url=endpoint, region_name="us-east-1")
    s3.create_bucket(Bucket="bench")
    started = time.perf_counter()
    populate("bench", "big/", range(batches), objects_per_batch)
    total = batches * (objects_per_batch + 1)
    print(f"setup: {total:,} objects in {batches} batch folders under big/ ({time.perf_counter() - started:.1f}s)",
          file=sys.stderr)

    def pipeline(name: str, prefix: str) -> dict:
        return {"name": name, "data_collection": 1, "storage": 1,
                "source": {"path": f"s3://bench/{prefix}", "connection": {"endpoint_url": endpoint, "region": "us-east-1"}},
                "batches": {"ready_marker": "_READY"}, "sensor": {"on_first_pass": "register"}}

    with tempfile.TemporaryDirectory() as tmp, dg.instance_for_test() as instance:
        defs = build_definitions(parse_pipeline_file({"pipelines": [pipeline("big", "big"), pipeline("empty", "empty")]}),
                                 base_dir=Path(tmp), state_dir=Path(tmp) / "state")
        resources = {"synapse": SynapseResource(host="http://127.0.0.1:9", access_token="unused"),
                     "sources": SourcesResource(base_dir=tmp)}
        cursors: dict[str, str | None] = {"big": None, "empty": None}

        def tick(name: str) -> tuple[float, dg.SensorResult]:
            sensor = defs.resolve_sensor_def(f"{name}_new_batches")
            context = dg.build_sensor_context(instance=instance, cursor=cursors[name], resources=resources)
            t0 = time.perf_counter()
            result = sensor(context)
            elapsed = time.perf_counter() - t0
            for request in result.dynamic_partitions_requests:
                instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
            cursors[name] = result.cursor
            return elapsed, result

        first_pass, ticks = 0.0, 0
        while True:  # the first pass registers the existing batches for a backfill (no runs)
            elapsed, result = tick("big")
            first_pass += elapsed
            ticks += 1
            if not result.dynamic_partitions_requests:
                break
        tick("empty")
        print(f"first pass over big/: {first_pass:.2f}s in {ticks} ticks "
              f"({len(instance.get_dynamic_partitions('big_batches'))} batches registered)", file=sys.stderr)

        timings: dict[str, list[float]] = {"big": [], "empty": []}
        for r in range(repeats):
            for name, prefix in (("big", "big/"), ("empty", "empty/")):
                populate("bench", prefix, range(10_000_000 + r, 10_000_001 + r), objects_per_batch)
                elapsed, result = tick(name)
                assert [q.partition_key for q in result.run_requests] == [f"b{10_000_000 + r:06d}"], result
                timings[name].append(elapsed)

        listing = []
        for _ in range(min(repeats, 3)):
            t0 = time.perf_counter()
            count = sum(len(page.get("Contents", [])) for page in s3.get_paginator("list_objects_v2").paginate(Bucket="bench", Prefix="big/"))
            listing.append(time.perf_counter() - t0)
    server.stop()

    big, empty, full = statistics.median(timings["big"]), statistics.median(timings["empty"]), statistics.median(listing)
    median = f"median of {repeats} ticks"
    return [Row(f"sensor tick taking a new batch of {objects_per_batch}", f"on a {total:,}-object prefix",
                "on an empty prefix", wall=Figure(big, empty, "s"), detail=median),
            Row(f"sensor tick on a {total:,}-object prefix", "the tick", "a full ListObjectsV2 of the prefix",
                wall=Figure(big, full, "s"),
                detail=f"{median}; the listing ({count:,} objects by then): median of {min(repeats, 3)}")]


if __name__ == "__main__":
    raise SystemExit(main())
