"""A batch's delivery on a real local Ray cluster (``ray start --head`` on 127.0.0.1, two worker CPUs).

``synapse-dagster ingest`` on a pipeline with ``engine: ray`` drives the run; its delivery step sends shards of the
plan to the cluster at ``RAY_ADDRESS``, where the workers take the Synapse token from their own environment. The
tests check what the sandbox holds: exactly one unit per unit and one data file per file, also when a Ray worker
is killed in the middle of a shard and Ray runs the shard again.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from synapse_dagster_tests.cli.ingest_hosts import make_host, reported, write_batch
from synapse_dagster_tests.cli.test_double_launch import PUT
from synapse_dagster_tests.servers.ray import RAY_ENV, ray_head

pytest.importorskip("ray", reason="Ray is a dev dependency; scripts/test installs it")

UNITS, PER_SHARD = 12, 3  # four shards on two worker CPUs


@pytest.fixture(scope="module")
def ray_cluster(sandbox, tmp_path_factory) -> Iterator[str]:
    """A head node with two CPUs (so two worker processes run shards at once); its workers see the sandbox's
    host and token in their environment, as a real cluster's would from a secret."""
    env = {**os.environ, "SYNAPSE_HOST": sandbox.url, "SYNAPSE_ACCESS_TOKEN": sandbox.token}
    env.pop("SYNAPSE_TENANT", None)
    with ray_head(2, env, tmp_path_factory.mktemp("ray")) as address:
        yield address


def ray_host(tmp_path: Path, collection: int, address: str, name: str, seed: int):
    write_batch(tmp_path / "incoming" / "b001", UNITS, seed, name)
    return make_host(tmp_path, pipeline=name, collection=collection, source={"path": "./incoming"},
                     upload_max_workers=2, creating_data_unit_batch_size=2,
                     engine={"kind": "ray", "units_per_shard": PER_SHARD, "max_shard_retries": 3},
                     env={**RAY_ENV, "RAY_ADDRESS": address})


def assert_exact(sandbox, collection: int, files_before: int) -> None:
    landed = Counter(u["meta"]["dataset_key"] for u in sandbox.units(collection))
    assert len(landed) == UNITS and set(landed.values()) == {1}, landed
    assert sandbox.stats()["counts"]["data_files"] - files_before == 2 * UNITS


def created_and_existed(output: str) -> tuple[int, int]:
    """From the report line ``data units created: 9; already existed: 3; failed: 0``."""
    line = next(x for x in output.splitlines() if x.strip().startswith("data units created"))
    created, existed = re.findall(r"\d+", line.replace(",", ""))[:2]
    return int(created), int(existed)


def shard_workers() -> list[int]:
    """The PIDs of Ray worker processes running a shard (Ray names them after the task)."""
    found = subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True, text=True).stdout.splitlines()
    return [int(line.split()[0]) for line in found if "ray::deliver_shard" in line]


def test_shards_on_a_ray_cluster_deliver_every_unit_once(tmp_path, synapse_env, collection, ray_cluster):
    host = ray_host(tmp_path, collection, ray_cluster, "on_ray", 510)
    files_before = synapse_env.stats()["counts"]["data_files"]
    done = host.run("b001", timeout=400)
    assert done.returncode == 0, done.stdout + done.stderr
    assert reported(done.stdout, "data units created") == UNITS, done.stdout
    assert_exact(synapse_env, collection, files_before)
    again = host.run("b001", timeout=400)  # a re-run finds everything there and sends nothing
    assert again.returncode == 0 and reported(again.stdout, "data units created") == 0, again.stdout
    assert_exact(synapse_env, collection, files_before)


def test_a_ray_worker_killed_mid_shard_is_retried_and_the_batch_ends_exact(
        tmp_path, synapse_env, collection, ray_cluster):
    host = ray_host(tmp_path, collection, ray_cluster, "killed_on_ray", 520)
    files_before = synapse_env.stats()["counts"]["data_files"]
    puts_before = synapse_env.stats()["requests"].get(PUT[2], 0)
    synapse_env.set_faults([{"match": {"method": PUT[0], "path": PUT[1]}, "action": "latency", "latency_ms": 300}])
    run = host.start("b001")
    try:
        deadline = time.monotonic() + 180
        while not (shard_workers() and synapse_env.stats()["requests"].get(PUT[2], 0) - puts_before >= 3):
            assert time.monotonic() < deadline and run.poll() is None, "no shard started uploading"
            time.sleep(0.05)
        os.kill(shard_workers()[0], signal.SIGKILL)  # a worker dies with its shard half sent
        output = run.communicate(timeout=400)[0]
    finally:
        synapse_env.set_faults([])
    assert run.returncode == 0, output  # Ray ran the shard again on a new worker
    created, existed = created_and_existed(output)
    assert created + existed == UNITS, output  # what the dead attempt created, the retry found
    assert_exact(synapse_env, collection, files_before)
