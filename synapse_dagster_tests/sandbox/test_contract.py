"""The sandbox speaks the contract the real ``BackendClient`` expects (docs/synapse-http-contract.md).

Every test goes through the real SDK over HTTP and checks what the sandbox stored: bytes, checksums,
units, meta. Fault injection is checked by what the SDK does with it.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from synapse_sdk.clients.backend import BackendClient
from synapse_sdk.exceptions import AuthenticationError, NotFoundError, ValidationError

from synapse_sandbox.demo_data import demo_seed, png_bytes


def sha1(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read()


def write_files(folder: Path, sizes: dict[str, int]) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, size in sizes.items():
        path = folder / name
        path.write_bytes(os.urandom(size) if not name.endswith(".json") else json.dumps({"pad": "x" * size}).encode())
        out[name] = path
    return out


def unit_payload(collection: int, image_checksum: str, label_checksum: str, **meta) -> dict:
    return {
        "data_collection": collection,
        "files": {"image_1": {"checksum": image_checksum, "path": "a.png"}, "label_1": {"checksum": label_checksum, "path": "a.json"}},
        "meta": {"patient_id": "P0001", "age": 40, "sex": "F", "dataset_key": secrets.token_hex(4), **meta},
    }


@pytest.fixture
def two_files(sandbox, tmp_path):
    """One PNG and one JSON uploaded through presigned URLs; returns their confirm checksums."""
    image = tmp_path / "scan.png"
    image.write_bytes(png_bytes(16, 16, __import__("random").Random(1)))
    label = tmp_path / "label.json"
    label.write_text('{"finding": "none"}')
    result = sandbox.client().upload_files_bulk([image, label], strategy="presigned")
    checksums = {Path(r.file_key).name: r.checksum for r in result.results}
    assert result.failed_count == 0
    return checksums["scan.png"], checksums["label.json"]


def test_token_is_required_and_checked(sandbox):
    with pytest.raises(AuthenticationError):
        sandbox.client(token="not-the-token").get_data_collection(1)
    with pytest.raises(urllib.error.HTTPError) as raw:
        fetch(f"{sandbox.url}/data_collections/1/")
    assert raw.value.code == 401
    assert sandbox.client().get_data_collection(1)["file_specifications"][0]["name"] == "image_1"


def test_collection_storage_and_project_shapes(sandbox):
    client = sandbox.client()
    collection = client.get_data_collection(1)
    assert [s["name"] for s in collection["file_specifications"]] == ["image_1", "label_1"]
    assert collection["meta"]["data_unit_meta_schema"]["properties"]["age"]["type"] == "integer"
    storage = client.get_storage(1)  # a pydantic model, as with the real backend
    assert storage.provider == "file_system" and storage.configuration["location"].endswith("storage")
    assert client.get_default_storage()["id"] == 1
    assert client.get_project(1)["data_collection"] == 1
    with pytest.raises(NotFoundError):
        client.get_data_collection(999)
    listing = client.list_data_collections()
    assert listing["count"] >= 1 and listing["results"][0]["id"] == 1


def test_presigned_single_and_multipart_uploads_store_exact_bytes(sandbox, tmp_path, collection):
    sandbox.admin("PUT", "config", {"multipart_threshold": 64 * 1024, "part_size": 20 * 1024})
    try:
        files = write_files(tmp_path / "up", {"small.bin": 300, "big.bin": 70 * 1024 + 7, "label.json": 50})
        result = sandbox.client().upload_files_bulk(list(files.values()), strategy="presigned", max_workers=4)
    finally:
        sandbox.admin("PUT", "config", {"multipart_threshold": 100 * 2**20, "part_size": 100 * 2**20})
    assert result.failed_count == 0 and result.created_count == 3
    confirmed = {Path(r.file_key).name: r for r in result.results}
    for name, path in files.items():
        assert confirmed[name].checksum == sha1(path.read_bytes())
    assert sandbox.stats()["requests"]["PUT _storage/upload/<path:file_key>"] >= 1 + 4 + 1  # big.bin took 4 parts
    created = sandbox.client().create_data_units(
        [unit_payload(collection, confirmed["big.bin"].checksum, confirmed["label.json"].checksum)]
    )
    unit = sandbox.client().get_data_unit(created[0]["id"])
    assert fetch(unit["files"]["image_1"]["url"]) == files["big.bin"].read_bytes()
    assert fetch(unit["files"]["label_1"]["url"]) == files["label.json"].read_bytes()


def test_storage_urls_reject_tampered_signatures(sandbox, two_files, collection):
    unit = sandbox.client().create_data_units(unit_payload(collection, *two_files))
    url = sandbox.client().get_data_unit(unit["id"])["files"]["image_1"]["url"]
    with pytest.raises(urllib.error.HTTPError) as denied:
        fetch(url[:-4] + "0000")
    assert denied.value.code == 403 and b"SignatureDoesNotMatch" in denied.value.read()


def test_direct_and_chunked_data_files(sandbox, tmp_path):
    client = sandbox.client()
    path = tmp_path / "volume.pcd"
    data = os.urandom(50_000)
    path.write_bytes(data)
    direct = client.create_data_file(path, use_chunked_upload=False)
    assert direct["checksum"] == sha1(data) and direct["size"] == len(data)
    upload = client.create_chunked_upload(path, chunk_size=16 * 1024)  # 4 chunks with Content-Range
    assert upload["completed_at"]
    chunked = client._post("data_files/", data={"chunked_upload": upload["id"]})
    assert chunked["checksum"] == sha1(data) and chunked["id"] != direct["id"]
    existing = client.verify_data_files_checksums([hashlib.md5(data).hexdigest(), sha1(data), "0" * 40])
    assert existing["existing_checksums"] == [hashlib.md5(data).hexdigest(), sha1(data)]


def test_meta_schema_rejects_the_whole_request_with_per_item_errors(sandbox, two_files, collection):
    good = unit_payload(collection, *two_files)
    bad = unit_payload(collection, *two_files, age="forty")
    with pytest.raises(ValidationError) as rejected:
        sandbox.client().create_data_units([good, bad])
    detail = rejected.value.detail
    assert isinstance(detail, list) and detail[0] == {} and "age" in detail[1]["meta"][0]
    assert sandbox.units(collection) == []  # all or nothing, as a DRF many=True serializer
    unknown = unit_payload(collection, "f" * 40, two_files[1])
    with pytest.raises(ValidationError) as unknown_file:
        sandbox.client().create_data_units(unknown)
    assert "No uploaded data file has checksum" in unknown_file.value.detail["files"]["image_1"][0]


def test_units_are_paginated_and_filtered_by_collection(sandbox, two_files, collection):
    client = sandbox.client()
    client.create_data_units([unit_payload(collection, *two_files) for _ in range(5)])
    page = client.list_data_units(params={"data_collection": collection, "page_size": 2})
    assert page["count"] == 5 and len(page["results"]) == 2 and "page=2" in page["next"]
    pages, count = client.list_data_units(params={"data_collection": collection}, list_all=True, url_conversion={}, page_size=2)
    units = list(pages)
    assert count == 5 and len({u["id"] for u in units}) == 5
    assert all(u["data_collection"] == collection for u in units)


def test_tasks_are_created_for_units(sandbox, two_files):
    unit = sandbox.client().create_data_units(unit_payload(1, *two_files))
    tasks = sandbox.client().create_tasks({"project": 1, "data": [{"data_unit": unit["id"]}]})
    assert tasks[0]["data_unit"] == unit["id"]
    assert sandbox.client().list_tasks({"project": 1})["count"] >= 1


def test_errors_before_commit_are_retried_by_the_sdk_without_duplicates(sandbox, two_files, collection):
    before = sandbox.stats()["requests"].get("POST data_units/", 0)
    sandbox.set_faults([{"match": {"method": "POST", "path": "^data_units/$"}, "action": "error", "status": 503, "times": 1}])
    try:
        sandbox.client().create_data_units([unit_payload(collection, *two_files)])
    finally:
        sandbox.set_faults([])
    assert sandbox.stats()["requests"]["POST data_units/"] == before + 2
    assert len(sandbox.units(collection)) == 1


def test_rate_limits_carry_retry_after(sandbox):
    sandbox.set_faults([{"match": {"path": "^data_collections/"}, "action": "rate_limit", "retry_after": 1, "times": 1}])
    started = time.monotonic()
    try:
        collection = sandbox.client().get_data_collection(1)  # urllib3 honours Retry-After on 429
    finally:
        sandbox.set_faults([])
    assert collection["id"] == 1 and time.monotonic() - started >= 0.9


def test_a_5xx_after_commit_is_what_makes_the_sdk_duplicate(sandbox, two_files, collection):
    """The hazard the pipeline's ledger exists for: the sandbox reproduces it only when asked."""
    sandbox.set_faults([{"match": {"method": "POST", "path": "^data_units/$"}, "action": "error_after_commit", "times": 1}])
    try:
        sandbox.client().create_data_units([unit_payload(collection, *two_files, dataset_key="once")])
    finally:
        sandbox.set_faults([])
    assert [u["meta"]["dataset_key"] for u in sandbox.units(collection)] == ["once", "once"]


def test_state_and_download_links_survive_a_restart(tmp_path):
    from synapse_sandbox.server import start_sandbox_process

    token = secrets.token_urlsafe(12)
    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps(demo_seed(str(tmp_path / "storage"))))
    image = tmp_path / "x.png"
    image.write_bytes(png_bytes(8, 8, __import__("random").Random(2)))
    label = tmp_path / "x.json"
    label.write_text("{}")
    with start_sandbox_process(tmp_path / "data", token, seed=seed) as first:
        client = BackendClient(first.url, access_token=token)
        sums = {Path(r.file_key).suffix: r.checksum for r in client.upload_files_bulk([image, label], strategy="presigned").results}
        unit = client.create_data_units(unit_payload(1, sums[".png"], sums[".json"]))
        url = client.get_data_unit(unit["id"])["files"]["image_1"]["url"]
    assert (tmp_path / "storage").is_dir()  # bytes land in the local storage's location
    with start_sandbox_process(tmp_path / "data", token, seed=seed) as second:
        client = BackendClient(second.url, access_token=token)
        again = client.get_data_unit(unit["id"])
        assert again["meta"] == unit["meta"]
        assert fetch(client.get_data_unit(unit["id"])["files"]["image_1"]["url"]) == image.read_bytes()
        if first.url == second.url:
            assert fetch(url) == image.read_bytes()  # the signing key persisted too


@pytest.mark.parametrize("field, value", [("times", "2"), ("status", "503"), ("latency_ms", 1.5), ("retry_after", -1)])
def test_a_malformed_fault_rule_is_refused_with_its_field_named(sandbox, field, value):
    rule = {"match": {"path": "^data_units/$"}, "action": "error", field: value}
    with pytest.raises(urllib.error.HTTPError) as err:
        sandbox.set_faults([rule])
    assert err.value.code == 400 and field in err.value.read().decode()
    assert sandbox.client().get_data_collection(1)["id"] == 1  # the sandbox still answers normally
