"""What only GCS does (gcp-storage-emulator): microsecond mtimes, MD5 tags, and its failures explained."""

from __future__ import annotations

import time

import pytest

from synapse_dagster.core.redaction import redact
from synapse_dagster.core.sources.files import SourceError
from synapse_dagster.core.sources.listing import check_source, list_files
from synapse_dagster.core.sources.location import parse_source
from synapse_dagster.core.sources.options import ConnectionOptions
from synapse_dagster_tests.core.sources.trees import (
    TOP_LEVEL_FILES,
    assert_tree_listed,
    by_path,
    closed_port,
)


def test_gcs_lists_nested_prefixes_with_md5_and_microsecond_mtimes(gcs_server, gcs_batch):
    files = list(list_files(parse_source(f"gs://{gcs_batch}/in"), gcs_server.options()))
    assert_tree_listed(files, f"gs://{gcs_batch}/in/", etags=True)
    blob = gcs_server.client().bucket(gcs_batch).get_blob("in/meta.xlsx")
    listed = by_path(files)["meta.xlsx"]
    assert listed.mtime_ns == int(blob.updated.timestamp()) * 10**9 + blob.updated.microsecond * 1000
    assert listed.mtime_ns % 10**9 != 0 or blob.updated.microsecond == 0

    flat = list(list_files(parse_source(f"gs://{gcs_batch}/in"), gcs_server.options(), recursive=False))
    assert {f.relative_path for f in flat} == TOP_LEVEL_FILES


def test_gcs_check_source_errors(gcs_server, gcs_batch, silent_port, tmp_path):
    check_source(parse_source(f"gs://{gcs_batch}/in"), gcs_server.options())
    with pytest.raises(SourceError, match="bucket 'no-such-bucket-x' does not exist"):
        check_source(parse_source("gs://no-such-bucket-x/in"), gcs_server.options())
    with pytest.raises(SourceError, match="no objects under this prefix") as err:
        check_source(parse_source(f"gs://{gcs_batch}/nothing-here"), gcs_server.options())
    assert f"gs://{gcs_batch}/nothing-here/" in str(err.value)
    for port in (closed_port(), silent_port):
        started = time.monotonic()
        with pytest.raises(SourceError, match=f"cannot reach http://127.0.0.1:{port}"):
            check_source(
                parse_source(f"gs://{gcs_batch}/in"),
                gcs_server.options(gcs_endpoint=f"http://127.0.0.1:{port}", connect_timeout=1, read_timeout=1),
            )
        assert time.monotonic() - started < 5
    with pytest.raises(SourceError, match="GCS credentials could not be loaded") as err:
        check_source(parse_source(f"gs://{gcs_batch}/in"), gcs_server.options(gcs_token=str(tmp_path / "nope.json")))
    assert f"gs://{gcs_batch}/in/" in str(err.value)
    # Key file content pasted as text is a secret: it is parsed, and its private key is masked everywhere.
    pasted = ConnectionOptions(gcs_token='{"type": "service_account", "private_key": "-----BEGIN KEY-----abc123"}')
    assert pasted.gcs_token["type"] == "service_account"
    assert redact("key -----BEGIN KEY-----abc123 leaked") == "key *** leaked"
