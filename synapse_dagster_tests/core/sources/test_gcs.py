"""What only GCS does (gcp-storage-emulator): microsecond mtimes, MD5 tags, and its failures explained."""

from __future__ import annotations

import base64
import time
from datetime import datetime

import pytest
from google.cloud._helpers import _rfc3339_nanos_to_datetime
from hypothesis import example, given, settings
from hypothesis import strategies as st

from synapse_dagster.core.redaction import redact
from synapse_dagster.core.sources import gcs as remote_gcs
from synapse_dagster.core.sources.files import SourceError
from synapse_dagster.core.sources.listing import check_source, list_files
from synapse_dagster.core.sources.location import parse_source
from synapse_dagster.core.sources.options import ConnectionOptions
from synapse_dagster.core.sources.store import datetime_ns
from synapse_dagster_tests.core.sources.trees import (
    TOP_LEVEL_FILES,
    TREE,
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


def test_gcs_records_carry_what_the_librarys_blobs_say(gcs_server, gcs_batch):
    """Records come from the page's JSON, not from Blob objects; size, mtime and tag must not change for it."""
    blobs = {b.name: b for b in gcs_server.client().list_blobs(gcs_batch, prefix="in/")}
    files = list(list_files(parse_source(f"gs://{gcs_batch}/in"), gcs_server.options()))
    assert len(files) == len(TREE)
    for f in files:
        blob = blobs[f"in/{f.relative_path}"]
        expected = (blob.size, datetime_ns(blob.updated), base64.b64decode(blob.md5_hash).hex())
        assert (f.size, f.mtime_ns, f.etag) == expected


@settings(max_examples=500, deadline=None)
@given(st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)), st.integers(0, 9),
       st.sampled_from(["", "Z", "+00:00", "garbage"]))
@example(datetime(2026, 11, 23, 20, 14, 4, 481752), 6, "")
def test_gcs_updated_parser_agrees_with_the_librarys(moment, digits, tail):
    """Every fraction length GCS may send (0-9 digits, cut to µs) and malformed text: same ns, or same error."""
    fraction = f".{moment.microsecond:06d}999"[: digits + 1] if digits else ""
    text = moment.strftime("%Y-%m-%dT%H:%M:%S").rjust(19, "0") + fraction + ("Z" if tail == "" else tail)

    def outcome(parse):
        try:
            return parse(text)
        except (ValueError, TypeError) as exc:
            return type(exc)

    assert outcome(remote_gcs.updated_ns) == outcome(lambda t: datetime_ns(_rfc3339_nanos_to_datetime(t)))


def test_gcs_content_tag_is_the_md5_or_else_the_crc32c():
    assert remote_gcs._content_tag({"md5Hash": "NE/SMj3TPVwFi3zyfeAp6A==", "crc32c": "UloUdw=="}) == \
        "344fd2323dd33d5c058b7cf27de029e8"
    assert remote_gcs._content_tag({"md5Hash": None, "crc32c": "UloUdw=="}) == "crc32c:UloUdw=="  # composite objects
    assert remote_gcs._content_tag({}) is None


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
