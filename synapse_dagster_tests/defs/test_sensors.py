"""The batch sensor against a real S3 server (moto) and a real Dagster instance, tick by tick.

Each test reproduces a way Dagster's own S3/GCS helpers lose or repeat objects (dagster-io/dagster
#22892, #25890: same-second arrivals, rewritten or deleted cursor keys) and shows this sensor takes every batch once.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from synapse_dagster.definitions import build_definitions
from synapse_dagster.config.loading import parse_pipeline_file
from synapse_dagster.defs.resources import SynapseResource


class Harness:
    """Runs sensor ticks the way the daemon does: apply the partition requests, keep the cursor, collect runs."""

    def __init__(self, defs: dg.Definitions, instance: dg.DagsterInstance, name: str) -> None:
        self.sensor = defs.resolve_sensor_def(name)
        self.instance = instance
        self.cursor: str | None = None
        self.run_keys: list[str] = []
        self.resources = {"synapse": SynapseResource(host="http://127.0.0.1:9", access_token="unused"),
                          "sources": defs.resources["sources"]}

    def tick(self) -> dg.SensorResult:
        context = dg.build_sensor_context(instance=self.instance, cursor=self.cursor,
                                          resources=self.resources)
        result = self.sensor(context)
        for request in result.dynamic_partitions_requests:
            self.instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
        self.cursor = result.cursor
        self.run_keys += [r.run_key for r in result.run_requests]
        return result

    def taken(self, ticks: int = 1) -> list[str]:
        found = []
        for _ in range(ticks):
            found += [r.partition_key for r in self.tick().run_requests]
        return found


@pytest.fixture
def bucket(s3_server, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_key)
    return s3_server.new_bucket("watch")


def watch(tmp_path: Path, s3_server, bucket: str, instance, **sensor) -> Harness:
    config = {
        "name": "watched", "data_collection": 1, "storage": 1,
        "source": {"path": f"s3://{bucket}/incoming", "connection": {"endpoint_url": s3_server.endpoint, "region": "us-east-1"}},
        "batches": {"ready_marker": "_READY"},
        "sensor": {"on_first_pass": "run", "full_rescan_every_ticks": 3, "lookback": 2, **sensor},
    }
    defs = build_definitions(parse_pipeline_file({"pipelines": [config]}), base_dir=tmp_path, state_dir=tmp_path / "state")
    return Harness(defs, instance, "watched_new_batches")


def land(s3_server, bucket: str, batch: str, *, ready: bool = True, files: int = 2) -> None:
    for i in range(files):
        s3_server.put(bucket, f"incoming/{batch}/P{i:04d}/scan.png", b"png")
    if ready:
        s3_server.put(bucket, f"incoming/{batch}/_READY", b"")


def test_batches_landing_in_the_same_second_are_all_taken_once_ready(tmp_path, s3_server, bucket):
    for batch in ["2026-11-24T10", "2026-11-24T11", "2026-11-24T12"]:  # same LastModified second
        land(s3_server, bucket, batch, ready=batch != "2026-11-24T12")
    with dg.instance_for_test() as instance:
        harness = watch(tmp_path, s3_server, bucket, instance)
        first = harness.tick()
        assert [r.partition_key for r in first.run_requests] == ["2026-11-24T10", "2026-11-24T11"]
        assert instance.get_dynamic_partitions("watched_batches") == ["2026-11-24T10", "2026-11-24T11"]
        assert harness.taken() == []  # T12 has no marker yet: it waits
        s3_server.put(bucket, "incoming/2026-11-24T12/_READY", b"")
        assert harness.taken(3) == ["2026-11-24T12"]
        assert len(harness.run_keys) == len(set(harness.run_keys)) == 3


def test_rewritten_or_deleted_cursor_batch_hides_nothing(tmp_path, s3_server, bucket):
    for batch in ["b001", "b002", "b003"]:
        land(s3_server, bucket, batch)
    with dg.instance_for_test() as instance:
        harness = watch(tmp_path, s3_server, bucket, instance)
        assert harness.taken() == ["b001", "b002", "b003"]
        land(s3_server, bucket, "b003")  # the cursor's batch rewritten (dagster #22892 hides what follows)
        client = s3_server.client()
        for obj in client.list_objects_v2(Bucket=bucket, Prefix="incoming/b002/")["Contents"]:
            client.delete_object(Bucket=bucket, Key=obj["Key"])  # a processed batch deleted (the helper raises)
        land(s3_server, bucket, "b004")
        land(s3_server, bucket, "b005")
        assert harness.taken(3) == ["b004", "b005"]


def test_late_older_batches_are_found_and_never_repeated(tmp_path, s3_server, bucket):
    for batch in ["2026-11-24T10", "2026-11-24T11", "2026-11-24T12", "2026-11-24T13"]:
        land(s3_server, bucket, batch)
    with dg.instance_for_test() as instance:
        harness = watch(tmp_path, s3_server, bucket, instance)
        assert len(harness.taken()) == 4
        land(s3_server, bucket, "2026-11-24T12b")  # late, sorts among the newest: the look-back sees it
        assert harness.taken() == ["2026-11-24T12b"]
        land(s3_server, bucket, "2026-11-23T23")  # late and far behind the cursor: the rolling rescan sees it
        assert harness.taken(3) == ["2026-11-23T23"]
        assert harness.taken(6) == []
        assert len(harness.run_keys) == len(set(harness.run_keys)) == 6


def test_first_pass_registers_history_for_backfill_then_runs_new_batches(tmp_path, s3_server, bucket):
    for day in range(1, 13):
        land(s3_server, bucket, f"2026-11-{day:02d}", files=1)
    with dg.instance_for_test() as instance:
        harness = watch(tmp_path, s3_server, bucket, instance, on_first_pass="register")
        first = harness.tick()
        assert first.run_requests == [] and first.skip_reason.skip_message.startswith("12 new batch(es)")
        assert len(instance.get_dynamic_partitions("watched_batches")) == 12  # ready for a backfill from the UI
        land(s3_server, bucket, "2026-11-13")
        assert harness.taken() == ["2026-11-13"]


def test_work_per_tick_is_capped(tmp_path, s3_server, bucket):
    for i in range(25):
        land(s3_server, bucket, f"b{i:03d}", files=1)
    with dg.instance_for_test() as instance:
        harness = watch(tmp_path, s3_server, bucket, instance, max_batches_per_tick=10)
        per_tick = [len(harness.tick().run_requests) for _ in range(4)]
    assert per_tick == [10, 10, 5, 0]


def test_windows_mode_runs_closed_windows_once_and_again_for_late_objects(tmp_path, s3_server, bucket, monkeypatch):
    import time

    from synapse_dagster.defs import sensors
    from synapse_dagster.core.batches.windows import WindowSpec

    for i in range(3):  # a camera dumping into one flat prefix
        s3_server.put(bucket, f"flat/P{i:04d}.png", b"png")
    config = {
        "name": "cam", "data_collection": 1, "storage": 1,
        "source": {"path": f"s3://{bucket}/flat", "connection": {"endpoint_url": s3_server.endpoint, "region": "us-east-1"}},
        "batches": {"mode": "windows", "window": "hourly", "settle_seconds": 60},
        "sensor": {"on_first_pass": "run", "max_objects_per_tick": 2},
    }
    defs = build_definitions(parse_pipeline_file({"pipelines": [config]}), base_dir=tmp_path, state_dir=tmp_path / "state")

    def windows() -> set[str]:
        listed = s3_server.client().list_objects_v2(Bucket=bucket, Prefix="flat/")["Contents"]
        return {WindowSpec.parse("hourly").key(int(o["LastModified"].timestamp()) * 1_000_000_000) for o in listed}

    with dg.instance_for_test() as instance:
        harness = Harness(defs, instance, "cam_new_batches")
        assert harness.taken(3) == []  # the hour is still open
        monkeypatch.setattr(sensors, "now", lambda: time.time() + 3 * 3600)  # ... and now it has closed
        assert harness.taken() == []  # 2 of 3 objects scanned: the scan goes on, nothing is decided half-way
        first = harness.taken(2)
        assert sorted(first) == sorted(windows())
        s3_server.put(bucket, "flat/P0003.png", b"late")  # lands in an hour already ingested
        late = harness.taken(3)
        assert late and set(late) <= windows()
        assert harness.taken(4) == []
        assert len(harness.run_keys) == len(set(harness.run_keys))


def test_without_a_marker_a_folder_is_taken_once_its_files_settle(tmp_path):
    import os
    import time

    batch = tmp_path / "incoming" / "2026-11-24T10"
    (batch / "P0001").mkdir(parents=True)
    (batch / "P0001" / "scan.png").write_bytes(b"png")  # still being written, as far as anyone can tell
    config = {"name": "nas", "data_collection": 1, "storage": 1, "source": {"path": "./incoming"},
              "batches": {"settle_seconds": 60}, "sensor": {"on_first_pass": "run"}}
    defs = build_definitions(parse_pipeline_file({"pipelines": [config]}), base_dir=tmp_path, state_dir=tmp_path / "state")
    with dg.instance_for_test() as instance:
        harness = Harness(defs, instance, "nas_new_batches")
        assert harness.taken(2) == []
        old = time.time() - 120
        for path in batch.rglob("*"):
            os.utime(path, (old, old))
        assert harness.taken() == ["2026-11-24T10"]
        assert harness.taken(2) == []
