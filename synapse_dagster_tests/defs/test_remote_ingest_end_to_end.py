"""Batches from real local S3 (moto), GCS (gcp-storage-emulator) and SFTP (asyncssh) servers into the sandbox.

The whole graph runs through Dagster and the real SDK client; the bytes that land in the sandbox must
be the source's bytes, the meta must come from the remote sheet, and no secret may reach the event log.
"""

from __future__ import annotations

import urllib.request
from pathlib import Path

import dagster as dg
import pytest
import yaml

from synapse_dagster.definitions import build_definitions
from synapse_sandbox.demo_data import generate_batch
from synapse_dagster.config.loading import parse_pipeline_file

BATCH = "2026-11-24T09"


def local_batch(tmp_path: Path) -> tuple[Path, dict]:
    root = tmp_path / "local" / BATCH
    return root, generate_batch(root, units=5, seed=11, image_size=16)


def upload_tree(root: Path, put) -> None:
    for path in sorted(root.rglob("*")):
        if path.is_file():
            put(path.relative_to(root.parent).as_posix(), path.read_bytes())


def run_pipeline(tmp_path: Path, collection: int, config: dict) -> dg.ExecuteInProcessResult:
    config = {"name": "remote", "data_collection": collection, "storage": 1,
              "metadata": {"key_column": "patient_id"}, **config}
    (tmp_path / "pipelines.yaml").write_text(yaml.safe_dump({"pipelines": [config]}))
    defs = build_definitions(parse_pipeline_file({"pipelines": [config]}), base_dir=tmp_path, state_dir=tmp_path / "state")
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("remote_batches", [BATCH])
        result = defs.resolve_job_def("remote_ingest").execute_in_process(
            instance=instance, partition_key=BATCH, raise_on_error=False)
        logs = "\n".join(str(e.message) for e in instance.all_logs(result.run_id))
    return result, logs


def assert_landed(sandbox, collection: int, root: Path, expected: dict) -> None:
    units = {u["meta"]["patient_id"]: u for u in sandbox.units(collection)}
    assert sorted(units) == sorted(expected["valid"])
    for pid, unit in units.items():
        assert type(unit["meta"]["age"]) is int
        for spec, name in (("image_1", "scan.png"), ("label_1", "label.json")):
            with urllib.request.urlopen(unit["files"][spec]["url"], timeout=10) as response:
                assert response.read() == (root / pid / name).read_bytes()


def seed_s3_storage(sandbox, s3_server, storage_id: int, bucket: str) -> None:
    """A Synapse storage on the test S3 server whose credentials only Synapse holds."""
    sandbox.seed({"storages": [{
        "id": storage_id, "name": f"bucket-{storage_id}", "category": "external", "provider": "amazon_s3",
        "configuration": {"bucket_name": bucket, "access_key": s3_server.access_key, "secret_key": s3_server.secret_key,
                          "region_name": "us-east-1", "endpoint_url": s3_server.endpoint},
    }]})


@pytest.fixture
def s3_env(s3_server, monkeypatch):
    monkeypatch.setenv("TEST_S3_KEY", s3_server.access_key)
    monkeypatch.setenv("TEST_S3_SECRET", s3_server.secret_key)
    return {"endpoint_url": s3_server.endpoint, "region": s3_server.region,
            "secrets_from_env": {"access_key": "TEST_S3_KEY", "secret_key": "TEST_S3_SECRET"}}


def test_s3_batch_lands_byte_identical(tmp_path, synapse_env, collection, s3_server, s3_env):
    root, expected = local_batch(tmp_path)
    bucket = s3_server.new_bucket("ingest")
    upload_tree(root, lambda key, data: s3_server.put(bucket, f"incoming/{key}", data))
    result, logs = run_pipeline(tmp_path, collection, {"source": {"path": f"s3://{bucket}/incoming", "connection": s3_env}})
    assert result.success
    assert_landed(synapse_env, collection, root, expected)
    assert s3_server.secret_key not in logs
    inventory = result.output_for_node("remote__source_inventory")
    assert all(f.uri.startswith(f"s3://{bucket}/incoming/{BATCH}/") and f.etag for f in inventory.files)


def test_gcs_batch_lands_byte_identical(tmp_path, synapse_env, collection, gcs_server):
    root, expected = local_batch(tmp_path)
    bucket = gcs_server.new_bucket("ingest")
    upload_tree(root, lambda key, data: gcs_server.put(bucket, f"drop/{key}", data))
    result, _ = run_pipeline(tmp_path, collection, {
        "source": {"path": f"gs://{bucket}/drop", "connection": {"gcs_endpoint": gcs_server.endpoint, "gcs_project": "test"}}})
    assert result.success
    assert_landed(synapse_env, collection, root, expected)


def test_sftp_batch_lands_byte_identical(tmp_path, synapse_env, collection, sftp_server, monkeypatch):
    root, expected = local_batch(tmp_path)
    folder = sftp_server.new_folder("nas")
    upload_tree(root, lambda key, data: sftp_server.put(f"{folder}/{key}", data))
    monkeypatch.setenv("TEST_SFTP_PASSWORD", sftp_server.password)
    result, logs = run_pipeline(tmp_path, collection, {"source": {"path": sftp_server.url(folder), "connection": {
        "sftp_known_hosts": str(sftp_server.known_hosts), "secrets_from_env": {"sftp_password": "TEST_SFTP_PASSWORD"}}}})
    assert result.success, logs[-3000:]
    assert_landed(synapse_env, collection, root, expected)
    assert sftp_server.password not in logs


def test_multi_path_mixes_providers_per_spec(tmp_path, synapse_env, collection, s3_server, s3_env, gcs_server):
    root, expected = local_batch(tmp_path)
    bucket, gbucket = s3_server.new_bucket("images"), gcs_server.new_bucket("labels")
    for pid in expected["valid"] + list(expected["invalid"]):
        s3_server.put(bucket, f"scans/{BATCH}/{pid}.png", (root / pid / "scan.png").read_bytes())
        if (root / pid / "label.json").exists():
            gcs_server.put(gbucket, f"labels/{BATCH}/{pid}.json", (root / pid / "label.json").read_bytes())
    result, _ = run_pipeline(tmp_path, collection, {
        "assets": {
            "image_1": {"path": f"s3://{bucket}/scans", "connection": s3_env},
            "label_1": {"path": f"gs://{gbucket}/labels", "connection": {"gcs_endpoint": gcs_server.endpoint}},
        },
        "metadata": {"filename_regex": r"^(?P<patient_id>P\d{4})", "static": {"age": 40, "sex": "F"}},
    })
    assert result.success
    units = {u["meta"]["patient_id"]: u for u in synapse_env.units(collection)}
    # The unsafe label is screened after staging (it could not be read before) and its unit is skipped.
    assert sorted(units) == sorted(p for p in expected["valid"] + ["P0004"] if p != "P0003")
    uploads = result.asset_value(["remote", "uploaded_files"])
    rejected = [f for f in uploads.files.values() if f.error and "content guard" in f.error]
    assert [f.relative_path for f in rejected] == ["P0003.json"]
    for pid, unit in units.items():
        with urllib.request.urlopen(unit["files"]["image_1"]["url"], timeout=10) as response:
            assert response.read() == (root / pid / "scan.png").read_bytes()


def test_storage_relative_source_resolves_through_the_synapse_storage(tmp_path, synapse_env, collection, s3_server):
    """'datasets/xray' has no scheme: it lives in Synapse storage 7, an S3 bucket whose credentials only Synapse holds."""
    root, expected = local_batch(tmp_path)
    bucket = s3_server.new_bucket("storage")
    upload_tree(root, lambda key, data: s3_server.put(bucket, f"datasets/xray/{key}", data))
    seed_s3_storage(synapse_env, s3_server, 7, bucket)
    result, logs = run_pipeline(tmp_path, collection, {"storage": 7, "source": {"path": "datasets/xray"}})
    assert result.success
    assert_landed(synapse_env, collection, root, expected)
    assert result.output_for_node("remote__source_inventory").roots == {"*": f"s3://{bucket}/datasets/xray/{BATCH}/"}
    assert s3_server.secret_key not in logs
