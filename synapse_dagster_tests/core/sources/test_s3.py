"""What only S3 does (moto with IAM auth on): key order, paged listings, and every failure explained."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta, timezone

import pytest
from botocore.utils import parse_timestamp
from hypothesis import example, given, settings
from hypothesis import strategies as st

from synapse_dagster.core.redaction import redact
from synapse_dagster.core.sources import s3 as remote_s3
from synapse_dagster.core.sources.files import SourceError
from synapse_dagster.core.sources.listing import check_source, list_files, open_store
from synapse_dagster.core.sources.location import SourceLocation, parse_source
from synapse_dagster.core.sources.options import ConnectionOptions
from synapse_dagster.core.sources.storage import resolve_storage_path
from synapse_dagster.core.sources.store import datetime_ns
from synapse_dagster_tests.core.sources.trees import (
    TOP_LEVEL_FILES,
    TREE,
    assert_secret_free,
    assert_tree_listed,
    closed_port,
    settled,
)


def test_s3_lists_nested_prefixes_with_junk_marked_and_etags(s3_server, s3_batch):
    files = list(list_files(parse_source(f"s3://{s3_batch}/in"), s3_server.options(), source_spec="image_1"))
    assert_tree_listed(files, f"s3://{s3_batch}/in/", etags=True)
    assert [f.relative_path for f in files] == sorted(TREE)  # the store's key order
    assert {f.source_spec for f in files} == {"image_1"}

    flat = list(list_files(parse_source(f"s3://{s3_batch}/in/"), s3_server.options(), recursive=False))
    assert {f.relative_path for f in flat} == TOP_LEVEL_FILES


def test_s3_listed_mtimes_are_exactly_what_botocores_own_parser_gives(s3_server, s3_batch):
    """The store's clients parse timestamps with fromisoformat; a stock client (dateutil) must agree to the ns."""
    pages = s3_server.client().get_paginator("list_objects_v2").paginate(Bucket=s3_batch, Prefix="in/")
    stock = {item["Key"]: datetime_ns(item["LastModified"]) for page in pages for item in page["Contents"]}
    files = list(list_files(parse_source(f"s3://{s3_batch}/in"), s3_server.options()))
    assert files and {f"in/{f.relative_path}": f.mtime_ns for f in files}.items() <= stock.items()


@settings(max_examples=500, deadline=None)
@given(st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(9999, 12, 30)),
       st.sampled_from(["%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S.{ms}Z",
                        "%Y-%m-%dT%H:%M:%S.%f123Z", "%a, %d %b %Y %H:%M:%S GMT", "%Y-%m-%dT%H:%M:%S%z"]),
       st.integers(-14 * 60, 14 * 60))
@example(datetime(2026, 11, 23, 20, 10, 14), "epoch", 0)
def test_s3_timestamp_parser_agrees_with_botocores(moment, form, offset_minutes):
    """Every form botocore may meet (ISO 8601 with Z, with an offset, finer than µs; HTTP dates; epoch seconds)
    parses to the same instant, so mtimes and fingerprints do not change with the parser."""
    aware = moment.replace(tzinfo=UTC).astimezone(timezone(timedelta(minutes=offset_minutes)) if "%z" in form else UTC)
    if form == "epoch":
        text = str(int(aware.timestamp()))
    else:
        text = aware.strftime(form.replace("{ms}", f"{aware.microsecond // 1000:03d}"))
    assert datetime_ns(remote_s3.parse_s3_timestamp(text)) == datetime_ns(parse_timestamp(text))


def test_s3_listing_streams_page_by_page(s3_server, s3_batch, monkeypatch):
    monkeypatch.setattr(remote_s3, "PAGE_SIZE", 2)
    stream = list_files(parse_source(f"s3://{s3_batch}/in"), s3_server.options())
    first = next(stream)
    s3_server.put(s3_batch, "in/zz-arrived-later.txt", b"late")  # sorts last: only a lazy listing can see it
    rest = list(stream)
    assert [first.relative_path] + [f.relative_path for f in rest] == sorted(TREE) + ["zz-arrived-later.txt"]


def test_s3_listing_reads_exactly_one_page_ahead_and_stops_with_its_caller(s3_server, s3_batch, monkeypatch):
    """The next page is fetched while the caller works on this one (network and CPU overlap), never more than
    one (memory stays flat), and a caller that stops early leaves no thread or request behind."""
    monkeypatch.setattr(remote_s3, "PAGE_SIZE", 2)
    location = parse_source(f"s3://{s3_batch}/in")
    requests = []
    with open_store(location, s3_server.options()) as store:
        store._client.meta.events.register("before-call.s3.ListObjectsV2", lambda **_: requests.append(1))
        stream = list_files(location, store=store)
        next(stream)  # page 1 is in hand
        assert settled(requests, 2) == [1, 1]  # ... and page 2 is fetched meanwhile, but not page 3
        for _ in range(2):
            next(stream)  # page 2 taken: page 3 is being fetched
        assert settled(requests, 3) == [1, 1, 1]
        stream.close()
    assert not [t for t in threading.enumerate() if t.name.startswith("read-ahead")]


def test_s3_listing_of_a_missing_bucket_names_it(s3_server, s3_batch):
    """A failure in the read-ahead thread is raised in the caller's, worded like any other."""
    with pytest.raises(SourceError, match=f"bucket 'gone-{s3_batch}' does not exist"):
        list(list_files(parse_source(f"s3://gone-{s3_batch}/in"), s3_server.options()))


def test_s3_check_source_explains_each_failure_without_secrets(s3_server, s3_batch, silent_port):
    ok = s3_server.options()
    check_source(parse_source(f"s3://{s3_batch}/in"), ok)
    secrets = (s3_server.secret_key, s3_server.limited_secret_key, "wrong-secret-value-1")

    limited = s3_server.options(access_key=s3_server.limited_access_key, secret_key=s3_server.limited_secret_key)
    cases = [
        (f"s3://no-such-bucket-{s3_batch}/in", ok, "does not exist"),
        (f"s3://{s3_batch}/missing", ok, "no objects under this prefix"),
        (f"s3://{s3_batch}/in/meta.xlsx", ok, "names an object, not a folder"),
        (f"s3://{s3_batch}/in", s3_server.options(secret_key="wrong-secret-value-1"), "secret key does not match"),
        (f"s3://{s3_batch}/in", s3_server.options(access_key="AKIDUNKNOWN0000"), "access key ID is not known"),
        (f"s3://{s3_batch}/in", limited, "access denied"),
    ]
    for uri, options, expected in cases:
        with pytest.raises(SourceError) as err:
            check_source(parse_source(uri), options)
        message = str(err.value)
        assert expected in message and uri in message, message
        assert_secret_free(message, *secrets)

    # The limited user may list its own buckets: the denial above is about permissions, not the key.
    open_bucket = s3_server.new_bucket("open")
    s3_server.put(open_bucket, "x/y.txt", b"ok")
    assert [f.relative_path for f in list_files(parse_source(f"s3://{open_bucket}/x"), limited)] == ["y.txt"]

    for port, expected in ((closed_port(), "cannot reach"), (silent_port, "cannot reach")):
        started = time.monotonic()
        with pytest.raises(SourceError, match=expected) as err:
            check_source(
                parse_source(f"s3://{s3_batch}/in"),
                s3_server.options(endpoint_url=f"http://127.0.0.1:{port}", connect_timeout=1, read_timeout=1),
            )
        assert time.monotonic() - started < 5
        assert f"127.0.0.1:{port}" in str(err.value)
        assert_secret_free(str(err.value), *secrets)


def test_s3_storage_config_resolves_to_a_listable_location(s3_server, s3_batch):
    storage = {
        "id": 7,
        "name": "lab bucket",
        "provider": "amazon_s3",
        "configuration": {
            "bucket_name": s3_batch,
            "access_key": s3_server.access_key,
            "secret_key": s3_server.secret_key,
            "region_name": "us-east-1",
            "endpoint_url": s3_server.endpoint,
        },
    }
    location, options = resolve_storage_path("in/P0001", storage, ConnectionOptions())
    assert location == SourceLocation("s3", s3_batch, "in/P0001/")
    assert options.endpoint_url == s3_server.endpoint and options.secret_key == s3_server.secret_key
    assert s3_server.secret_key not in repr(options)
    assert redact(f"x {s3_server.secret_key} y") == "x *** y"
    check_source(location, options)
    assert sorted(f.relative_path for f in list_files(location, options)) == ["._scan.png", "label.json", "scan.png"]

    minio = {"provider": "minio", "configuration": {**storage["configuration"], "bucket_name": s3_batch}}
    assert resolve_storage_path("/in", minio, ConnectionOptions())[0] == SourceLocation("s3", s3_batch, "in/")
    with pytest.raises(SourceError, match="'bucket_name'"):
        resolve_storage_path("in", {"name": "broken", "provider": "s3", "configuration": {}}, ConnectionOptions())
    with pytest.raises(SourceError, match="cannot be listed"):
        resolve_storage_path("in", {"provider": "digital_ocean", "configuration": {}}, ConnectionOptions())
