"""Object keys are untrusted: a key that is no usable path is refused and named, and the bytes of every other
unit still land; an object that changes or goes between listing and upload holds only its own unit back."""

from __future__ import annotations

import unicodedata

import pytest

from synapse_dagster_tests.bad_input.harness import (
    BATCH, GOOD, PNG, assert_clear, ingest, sheet_rows)


@pytest.fixture
def bucket(s3_server, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_key)
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.endpoint)
    monkeypatch.setenv("AWS_REGION", s3_server.region)
    name = s3_server.new_bucket("keys")
    for pid in GOOD:
        s3_server.put(name, f"in/{BATCH}/{pid}/scan.png", PNG)
        s3_server.put(name, f"in/{BATCH}/{pid}/label.json", b'{"boxes": []}')
    s3_server.put(name, f"in/{BATCH}/meta.csv", sheet_rows([*GOOD, "P0006"]).encode())
    return name


def run(tmp_path, sandbox, collection, bucket, **kwargs):
    return ingest(tmp_path, sandbox, collection, source={"path": f"s3://{bucket}/in"}, **kwargs)


@pytest.mark.parametrize("key, reason", [
    ("P0006/../../../escape/label.json", "has a '..' segment, which would point outside the source"),
    ("P0006/./label.json", "has a '.' segment"),
    ("P0006//label.json", "has an empty folder name"),
    ("P0006\\label.json", "has a backslash in its name"),
    ("P0006/label\x01.json", "has a control character (U+0001)"),
])
def test_a_key_that_is_no_usable_path_is_refused(tmp_path, synapse_env, collection, s3_server, bucket, key, reason):
    s3_server.put(bucket, f"in/{BATCH}/P0006/scan.png", PNG)
    s3_server.put(bucket, f"in/{BATCH}/{key}", b'{"stolen": true}')
    landing = run(tmp_path, synapse_env, collection, bucket)
    assert_clear(landing, reason, "missing required spec 'label_1")


def test_keys_in_two_unicode_normalizations_are_reported(tmp_path, synapse_env, collection, s3_server, bucket):
    s3_server.put(bucket, f"in/{BATCH}/P0006/scan.png", PNG)
    for form in ("NFC", "NFD"):
        s3_server.put(bucket, f"in/{BATCH}/P0006/{unicodedata.normalize(form, 'étiquette.json')}", b"{}")
    landing = run(tmp_path, synapse_env, collection, bucket)
    assert_clear(landing, "the same name in two Unicode normalizations (NFC/NFD)")


def test_an_empty_object_is_held_back_from_its_listing(tmp_path, synapse_env, collection, s3_server, bucket):
    s3_server.put(bucket, f"in/{BATCH}/P0006/scan.png", PNG)
    s3_server.put(bucket, f"in/{BATCH}/P0006/label.json", b"")
    landing = run(tmp_path, synapse_env, collection, bucket)
    assert_clear(landing, "P0006/label.json (label_1) is empty (0 bytes)")


def test_a_remote_label_that_does_not_parse_is_held_back_once_staged(tmp_path, synapse_env, collection, s3_server, bucket):
    s3_server.put(bucket, f"in/{BATCH}/P0006/scan.png", PNG)
    s3_server.put(bucket, f"in/{BATCH}/P0006/label.json", b"{not json")
    landing = run(tmp_path, synapse_env, collection, bucket)
    assert_clear(landing, "P0006/label.json", "is not valid JSON")


def test_an_object_deleted_between_planning_and_upload(tmp_path, synapse_env, collection, s3_server, bucket):
    s3_server.put(bucket, f"in/{BATCH}/P0006/scan.png", PNG)
    s3_server.put(bucket, f"in/{BATCH}/P0006/label.json", b"{}")
    gone = lambda: s3_server.client().delete_object(Bucket=bucket, Key=f"in/{BATCH}/P0006/label.json")  # noqa: E731
    landing = run(tmp_path, synapse_env, collection, bucket, between=("validated_meta", gone))
    assert_clear(landing, "P0006/label.json", "could not be copied from its source")


def test_an_object_rewritten_between_planning_and_upload(tmp_path, synapse_env, collection, s3_server, bucket):
    s3_server.put(bucket, f"in/{BATCH}/P0006/scan.png", PNG)
    s3_server.put(bucket, f"in/{BATCH}/P0006/label.json", b"{}")
    grow = lambda: s3_server.put(bucket, f"in/{BATCH}/P0006/label.json", b'{"boxes": [1]}')  # noqa: E731
    landing = run(tmp_path, synapse_env, collection, bucket, between=("validated_meta", grow))
    assert_clear(landing, "P0006/label.json", "the object changed since it was listed")
