"""Remote sources against real local servers: moto (S3, with IAM auth on), gcp-storage-emulator (GCS) and an
asyncssh SFTP server. Every assertion is on what the servers really returned: names, sizes, bytes, messages."""

from __future__ import annotations

import hashlib
import socket
import time
import tracemalloc
from pathlib import Path

import pytest

from synapse_dagster.core.sources import s3 as remote_s3, sftp as remote_sftp
from synapse_dagster.core.sources.files import SourceError, SourceFile
from synapse_dagster.core.redaction import redact
from synapse_dagster.core.sources.location import SourceLocation, parse_source, split_uri
from synapse_dagster.core.sources.storage import resolve_storage_path
from synapse_dagster.core.sources.options import ConnectionOptions
from synapse_dagster.core.sources.listing import check_source, list_files, list_subfolders
from synapse_dagster.core.sources.staging import staged_copies

# A batch as a NAS drops it: nested folders, a sibling prefix that must not leak in, and system junk.
TREE = {
    "P0001/scan.png": b"\x89PNG-one" * 10,
    "P0001/label.json": b'{"label": 1}',
    "P0002/deep/er/scan.png": b"\x89PNG-two" * 3,
    "meta.xlsx": b"sheet bytes",
    ".DS_Store": b"junk",
    "P0001/._scan.png": b"fork",
    "@eaDir/P0001/thumb.jpg": b"thumb",
}
EXPECTED_REASONS = {
    ".DS_Store": "system file '.DS_Store'",
    "P0001/._scan.png": "macOS resource fork ('._' file)",
    "@eaDir/P0001/thumb.jpg": "system folder '@eaDir'",
}
TOP_LEVEL_FILES = {"meta.xlsx", ".DS_Store"}


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def by_path(files: list[SourceFile]) -> dict[str, SourceFile]:
    return {f.relative_path: f for f in files}


def assert_tree_listed(files: list[SourceFile], uri_prefix: str, *, etags: bool) -> None:
    listed = by_path(files)
    assert set(listed) == set(TREE)
    for rel, data in TREE.items():
        f = listed[rel]
        assert f.uri == uri_prefix + rel
        assert f.size == len(data)
        assert f.excluded_reason == EXPECTED_REASONS.get(rel)
        assert f.etag == (md5(data) if etags else None)
        assert f.mtime_ns > 1_600_000_000 * 10**9
        assert f.fingerprint == f"{f.uri}|{f.size}|{f.etag or f.mtime_ns}"


def assert_secret_free(message: str, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in message


@pytest.fixture
def silent_port():
    """A port that accepts TCP connections (the kernel's backlog) but never says a word."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock.getsockname()[1]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- locations ------------------------------------------------------------------------------------------------


def test_parse_source_urls_and_paths():
    assert parse_source("s3://bucket/in/batch") == SourceLocation("s3", "bucket", "in/batch/")
    assert parse_source("s3://bucket") == SourceLocation("s3", "bucket", "")
    assert parse_source("gs://bucket/a/") == SourceLocation("gcs", "bucket", "a/")
    assert parse_source("sftp://ann@nas.local:2222/data/in/") == SourceLocation(
        "sftp", "nas.local", "/data/in", 2222, "ann"
    )
    assert parse_source("sftp://nas.local/data").port == 22
    assert parse_source("sftp://ann@[::1]:23/x") == SourceLocation("sftp", "::1", "/x", 23, "ann")
    assert parse_source("/srv/in") == SourceLocation("local", "", "/srv/in")
    assert parse_source("file:///srv/in") == SourceLocation("local", "", "/srv/in")
    assert parse_source("sftp://ann@nas:2222/data").uri == "sftp://ann@nas:2222/data"
    assert parse_source("s3://b/in").child("batch_001").uri == "s3://b/in/batch_001/"
    # Keys may hold '#', '?' and '%': URIs are split by hand, not by a URL parser.
    assert split_uri("s3://b/in/a#1?x%20.png") == ("s3", "b", "in/a#1?x%20.png")

    with pytest.raises(SourceError, match="not supported"):
        parse_source("azure://container/x")
    with pytest.raises(SourceError, match="relative"):
        parse_source("incoming/batch")
    with pytest.raises(SourceError, match="no bucket"):
        parse_source("s3:///prefix")
    with pytest.raises(SourceError, match="SFTP_PASSWORD") as err:
        parse_source("sftp://ann:hunter2-secret@nas/data")
    assert "hunter2-secret" not in str(err.value)


def test_options_from_env_register_secrets_and_hide_them():
    env = {
        "AWS_ACCESS_KEY_ID": "AKIAENVKEY123",
        "AWS_SECRET_ACCESS_KEY": "env-secret-value-9",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
        "AWS_REGION": "eu-west-1",
        "STORAGE_EMULATOR_HOST": "127.0.0.1:8",
        "SFTP_PASSWORD": "sftp-env-pass-7",
        "SFTP_USERNAME": "ann",
    }
    options = ConnectionOptions.from_env(env)
    assert (options.endpoint_url, options.region, options.gcs_endpoint, options.sftp_username) == (
        "http://127.0.0.1:9",
        "eu-west-1",
        "http://127.0.0.1:8",
        "ann",
    )
    assert options.secret_key == "env-secret-value-9"
    for secret in ("AKIAENVKEY123", "env-secret-value-9", "sftp-env-pass-7"):
        assert secret not in repr(options)
        assert redact(f"failed with {secret}") == "failed with ***"


# --- S3 -------------------------------------------------------------------------------------------------------


@pytest.fixture
def s3_batch(s3_server):
    bucket = s3_server.new_bucket()
    for rel, data in TREE.items():
        s3_server.put(bucket, f"in/{rel}", data)
    s3_server.put(bucket, "in2/not-mine.txt", b"sibling prefix")
    s3_server.put(bucket, "in/empty-folder-marker/", b"")
    return bucket


def test_s3_lists_nested_prefixes_with_junk_marked_and_etags(s3_server, s3_batch):
    files = list(list_files(parse_source(f"s3://{s3_batch}/in"), s3_server.options(), source_spec="image_1"))
    assert_tree_listed(files, f"s3://{s3_batch}/in/", etags=True)
    assert [f.relative_path for f in files] == sorted(TREE)  # the store's key order
    assert {f.source_spec for f in files} == {"image_1"}

    flat = list(list_files(parse_source(f"s3://{s3_batch}/in/"), s3_server.options(), recursive=False))
    assert {f.relative_path for f in flat} == TOP_LEVEL_FILES


def test_s3_listing_streams_page_by_page(s3_server, s3_batch, monkeypatch):
    monkeypatch.setattr(remote_s3, "PAGE_SIZE", 2)
    stream = list_files(parse_source(f"s3://{s3_batch}/in"), s3_server.options())
    first = next(stream)
    s3_server.put(s3_batch, "in/zz-arrived-later.txt", b"late")  # sorts last: only a lazy listing can see it
    rest = list(stream)
    assert [first.relative_path] + [f.relative_path for f in rest] == sorted(TREE) + ["zz-arrived-later.txt"]


def test_s3_subfolders_after_a_name(s3_server):
    bucket = s3_server.new_bucket()
    for key in [
        "drop/b1/x",
        "drop/b1/y/z",
        "drop/b2/x",
        "drop/b10/x",
        "drop/c/x",
        "drop/@eaDir/x",
        "drop/file.txt",
        "drop2/b9/x",
    ]:
        s3_server.put(bucket, key, b"1")
    location, options = parse_source(f"s3://{bucket}/drop"), s3_server.options()
    assert list(list_subfolders(location, options)) == ["b1", "b10", "b2", "c"]
    assert list(list_subfolders(location, options, start_after="b1")) == ["b10", "b2", "c"]
    assert list(list_subfolders(location, options, start_after="b2")) == ["c"]
    assert list(list_subfolders(location, options, start_after="c")) == []
    assert list(list_subfolders(location.child("b1"), options)) == ["y"]


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
        resolve_storage_path("in", {"provider": "azure", "configuration": {}}, ConnectionOptions())


# --- GCS ------------------------------------------------------------------------------------------------------


@pytest.fixture
def gcs_batch(gcs_server):
    bucket = gcs_server.new_bucket()
    for rel, data in TREE.items():
        gcs_server.put(bucket, f"in/{rel}", data)
    gcs_server.put(bucket, "in2/not-mine.txt", b"sibling prefix")
    return bucket


def test_gcs_lists_nested_prefixes_with_md5_and_microsecond_mtimes(gcs_server, gcs_batch):
    files = list(list_files(parse_source(f"gs://{gcs_batch}/in"), gcs_server.options()))
    assert_tree_listed(files, f"gs://{gcs_batch}/in/", etags=True)
    blob = gcs_server.client().bucket(gcs_batch).get_blob("in/meta.xlsx")
    listed = by_path(files)["meta.xlsx"]
    assert listed.mtime_ns == int(blob.updated.timestamp()) * 10**9 + blob.updated.microsecond * 1000
    assert listed.mtime_ns % 10**9 != 0 or blob.updated.microsecond == 0

    flat = list(list_files(parse_source(f"gs://{gcs_batch}/in"), gcs_server.options(), recursive=False))
    assert {f.relative_path for f in flat} == TOP_LEVEL_FILES


def test_gcs_subfolders_after_a_name(gcs_server):
    bucket = gcs_server.new_bucket()
    for key in ["drop/b1/x", "drop/b2/x", "drop/b2/y/z", "drop/c/x", "drop/#recycle/x", "drop/file.txt"]:
        gcs_server.put(bucket, key, b"1")
    location, options = parse_source(f"gs://{bucket}/drop"), gcs_server.options()
    assert list(list_subfolders(location, options)) == ["b1", "b2", "c"]
    # The emulator ignores startOffset, so this also proves the client-side filter.
    assert list(list_subfolders(location, options, start_after="b1")) == ["b2", "c"]
    assert list(list_subfolders(location, options, start_after="c")) == []


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


def test_gcs_storage_config_resolution(gcs_server, gcs_batch):
    storage = {"provider": "gcp", "configuration": {"bucket_name": gcs_batch, "credentials": "anon"}}
    # The SDK's GCS config has no endpoint key: the emulator host comes from the base options (env).
    location, options = resolve_storage_path("in/P0002", storage, ConnectionOptions(gcs_endpoint=gcs_server.endpoint))
    assert location.uri == f"gs://{gcs_batch}/in/P0002/"
    assert options.gcs_token == "anon"
    assert [f.relative_path for f in list_files(location, options)] == ["deep/er/scan.png"]


# --- SFTP -----------------------------------------------------------------------------------------------------


@pytest.fixture
def sftp_batch(sftp_server):
    folder = sftp_server.new_folder()
    for rel, data in TREE.items():
        sftp_server.put(f"{folder}/in/{rel}", data)
    sftp_server.put(f"{folder}/in2/not-mine.txt", b"sibling")
    return folder


def test_sftp_lists_folder_by_folder(sftp_server, sftp_batch):
    location = parse_source(sftp_server.url(f"{sftp_batch}/in"))
    files = list(list_files(location, sftp_server.options()))
    assert_tree_listed(files, f"sftp://tester@127.0.0.1:{sftp_server.port}{sftp_batch}/in/", etags=False)
    local = sftp_server.root / sftp_batch.lstrip("/") / "in" / "meta.xlsx"
    assert by_path(files)["meta.xlsx"].mtime_ns == int(local.stat().st_mtime) * 10**9  # SFTP v3: whole seconds
    # Per folder: its files (sorted), then its sub-folders (sorted), depth first, like the local listing.
    assert [f.relative_path for f in files][:2] == [".DS_Store", "meta.xlsx"]

    flat = list(list_files(location, sftp_server.options(), recursive=False))
    assert {f.relative_path for f in flat} == TOP_LEVEL_FILES


def test_sftp_listing_is_lazy(sftp_server, sftp_batch):
    stream = list_files(parse_source(sftp_server.url(f"{sftp_batch}/in")), sftp_server.options())
    next(stream)
    sftp_server.put(f"{sftp_batch}/in/P0002/later.txt", b"late")  # a folder not read yet
    assert "P0002/later.txt" in {f.relative_path for f in stream}


def test_sftp_subfolders_after_a_name(sftp_server):
    folder = sftp_server.new_folder()
    for rel in ["b1/x", "b2/x", "c/x", "@eaDir/x", "file.txt"]:
        sftp_server.put(f"{folder}/{rel}", b"1")
    location = parse_source(sftp_server.url(folder))
    assert list(list_subfolders(location, sftp_server.options())) == ["b1", "b2", "c"]
    assert list(list_subfolders(location, sftp_server.options(), start_after="b1")) == ["b2", "c"]


def test_sftp_check_source_errors(sftp_server, sftp_batch, silent_port, tmp_path):
    ok = sftp_server.options()
    check_source(parse_source(sftp_server.url(f"{sftp_batch}/in")), ok)
    sftp_server.put(f"{sftp_batch}/forbidden/secret.txt", b"x")
    (sftp_server.root / sftp_batch.lstrip("/") / "empty").mkdir()
    empty_known_hosts = tmp_path / "known_hosts"
    empty_known_hosts.write_text("")
    cases = [
        (f"{sftp_batch}/in", sftp_server.options(sftp_password="wrong-password-42"), "login refused for user 'tester'"),
        (f"{sftp_batch}/nope", ok, "no such file or folder"),
        (f"{sftp_batch}/in/meta.xlsx", ok, "is a file, not a folder"),
        (f"{sftp_batch}/empty", ok, "the folder is empty"),
        (f"{sftp_batch}/forbidden", ok, "access denied for user 'tester'"),
        (f"{sftp_batch}/in", sftp_server.options(sftp_known_hosts=str(empty_known_hosts)), "host key of 127.0.0.1"),
    ]
    for path, options, expected in cases:
        with pytest.raises(SourceError) as err:
            check_source(parse_source(sftp_server.url(path)), options)
        assert expected in str(err.value) and path in str(err.value), str(err.value)
        assert_secret_free(str(err.value), sftp_server.password, "wrong-password-42")
    # accept-any skips the host key check (what the SDK and sshfs do by default)
    check_source(
        parse_source(sftp_server.url(f"{sftp_batch}/in")),
        sftp_server.options(sftp_known_hosts=str(empty_known_hosts), sftp_host_key_policy="accept-any"),
    )

    for port, expected in ((closed_port(), "cannot reach"), (silent_port, "did not answer within 1 s")):
        started = time.monotonic()
        with pytest.raises(SourceError, match=expected):
            check_source(parse_source(f"sftp://tester@127.0.0.1:{port}/x"), sftp_server.options(connect_timeout=1))
        assert time.monotonic() - started < 5


def test_sftp_storage_config_resolution(sftp_server, sftp_batch):
    storage = {
        "provider": "sftp",
        "configuration": {
            "host": "127.0.0.1",
            "port": sftp_server.port,
            "username": sftp_server.username,
            "password": sftp_server.password,
            "root_path": sftp_batch,
        },
    }
    base = ConnectionOptions(sftp_known_hosts=str(sftp_server.known_hosts))
    location, options = resolve_storage_path("in/P0001", storage, base)
    assert location == SourceLocation("sftp", "127.0.0.1", f"{sftp_batch}/in/P0001", sftp_server.port, "tester")
    assert options.sftp_password == sftp_server.password and options.sftp_known_hosts == str(sftp_server.known_hosts)
    assert sorted(f.relative_path for f in list_files(location, options)) == ["._scan.png", "label.json", "scan.png"]


def test_local_scheme_goes_through_the_same_entry_points(tmp_path):
    for rel, data in TREE.items():
        (tmp_path / "in" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "in" / rel).write_bytes(data)
    storage = {"provider": "file_system", "configuration": {"location": str(tmp_path)}}
    location, options = resolve_storage_path("in", storage, ConnectionOptions())
    assert location == SourceLocation("local", "", str(tmp_path / "in"))
    check_source(location, options)
    listed = by_path(list(list_files(location, options)))
    assert set(listed) == set(TREE) and listed["@eaDir/P0001/thumb.jpg"].excluded_reason == "system folder '@eaDir'"
    assert list(list_subfolders(location, options, start_after="P0001")) == ["P0002"]
    (tmp_path / "void").mkdir()
    with pytest.raises(SourceError, match="empty"):
        check_source(parse_source(str(tmp_path / "void")))
    with pytest.raises(SourceError, match="does not exist"):
        check_source(parse_source(str(tmp_path / "nope")))


# --- staging --------------------------------------------------------------------------------------------------


def test_staged_copies_are_identical_bounded_and_removed(
    s3_server, s3_batch, gcs_server, gcs_batch, sftp_server, sftp_batch, tmp_path, monkeypatch
):
    monkeypatch.setattr(remote_s3, "CHUNK_SIZE", 7)  # many chunks per file, even for these small ones
    monkeypatch.setattr(remote_sftp, "CHUNK_SIZE", 7)
    big = bytes(range(256)) * 4  # 1 KiB: bigger than max_bytes, so it must travel alone
    s3_server.put(s3_batch, "big/blob.bin", big)
    local_file = tmp_path / "local" / "note.txt"
    local_file.parent.mkdir()
    local_file.write_bytes(b"stays where it is")

    files = [
        *list_files(parse_source(f"s3://{s3_batch}/in"), s3_server.options()),
        *list_files(parse_source(f"s3://{s3_batch}/big"), s3_server.options()),
        *list_files(parse_source(f"gs://{gcs_batch}/in/P0001"), gcs_server.options()),
        *list_files(parse_source(sftp_server.url(f"{sftp_batch}/in")), sftp_server.options()),
        *list_files(parse_source(str(local_file.parent))),
    ]
    expected = {f.fingerprint: f for f in files}
    sources = {
        f.fingerprint: big
        if f.relative_path == "blob.bin"
        else local_file.read_bytes()
        if f.uri == str(local_file)
        else TREE[f.uri.split("/in/", 1)[1]]
        for f in files
    }
    options = ConnectionOptions(
        endpoint_url=s3_server.endpoint,
        access_key=s3_server.access_key,
        secret_key=s3_server.secret_key,
        gcs_endpoint=gcs_server.endpoint,
        gcs_token="anon",
        sftp_username=sftp_server.username,
        sftp_password=sftp_server.password,
        sftp_known_hosts=str(sftp_server.known_hosts),
    )
    workdir = tmp_path / "staging"
    max_bytes = 100
    seen: dict[str, bytes] = {}
    slice_sizes = []
    with staged_copies(files + files[:3], options, workdir, max_bytes) as slices:  # duplicates are copied once
        previous: list[Path] = []
        for staged in slices:
            assert not any(p.exists() for p in previous), "the previous slice's copies must be gone"
            remote_bytes = sum(expected[fp].size for fp in staged if "://" in expected[fp].uri)
            slice_sizes.append(remote_bytes)
            assert remote_bytes <= max_bytes or len(staged) == 1
            for fingerprint, path in staged.items():
                assert fingerprint not in seen
                seen[fingerprint] = path.read_bytes()
                assert path.name == expected[fingerprint].name  # the SDK names the uploaded file after it
                if "://" in expected[fingerprint].uri:
                    assert workdir in path.parents
                    previous.append(path)
                else:
                    assert path == local_file
    assert seen == sources
    assert len(big) in slice_sizes and len(slice_sizes) >= 3
    assert list(workdir.iterdir()) == []
    assert local_file.read_bytes() == b"stays where it is"


def test_staging_reports_files_that_changed_after_listing(s3_server, s3_batch, sftp_server, sftp_batch, tmp_path):
    s3_files = list(list_files(parse_source(f"s3://{s3_batch}/in/P0001"), s3_server.options()))
    sftp_files = list(list_files(parse_source(sftp_server.url(f"{sftp_batch}/in/P0001")), sftp_server.options()))
    s3_server.put(s3_batch, "in/P0001/label.json", b'{"label": 2}')  # same size, new content
    sftp_server.put(f"{sftp_batch}/in/P0001/scan.png", b"shorter")
    s3_server.client().delete_object(Bucket=s3_batch, Key="in/P0001/scan.png")
    options = s3_server.options(
        sftp_username=sftp_server.username,
        sftp_password=sftp_server.password,
        sftp_known_hosts=str(sftp_server.known_hosts),
    )
    failures: dict[str, str] = {}
    with staged_copies(s3_files + sftp_files, options, tmp_path / "w", 10**6, failures=failures) as slices:
        staged = {fp: p.read_bytes() for s in slices for fp, p in s.items()}
    by_rel = {(f.uri.split(":")[0], f.relative_path): f.fingerprint for f in s3_files + sftp_files}
    assert failures.keys() == {by_rel["s3", "label.json"], by_rel["s3", "scan.png"], by_rel["sftp", "scan.png"]}
    assert "changed since it was listed" in failures[by_rel["s3", "label.json"]]
    assert "no longer exists" in failures[by_rel["s3", "scan.png"]]
    assert "copied 7 bytes but 80 were listed" in failures[by_rel["sftp", "scan.png"]]
    assert staged == {
        by_rel["s3", "._scan.png"]: b"fork",
        by_rel["sftp", "._scan.png"]: b"fork",
        by_rel["sftp", "label.json"]: TREE["P0001/label.json"],
    }

    with (
        pytest.raises(SourceError, match="changed since it was listed"),
        staged_copies(s3_files, options, tmp_path / "w2", 10**6) as slices,
    ):
        list(slices)
    assert list((tmp_path / "w2").iterdir()) == []


def test_staging_memory_stays_near_one_chunk(sftp_server, tmp_path, monkeypatch):
    monkeypatch.setattr(remote_sftp, "CHUNK_SIZE", 256 * 1024)
    folder = sftp_server.new_folder()
    payload = hashlib.sha256(b"seed").digest() * (16 * 1024 * 1024 // 32)  # 16 MiB
    sftp_server.put(f"{folder}/big.bin", payload)
    files = list(list_files(parse_source(sftp_server.url(folder)), sftp_server.options()))
    tracemalloc.start()
    try:
        with staged_copies(files, sftp_server.options(), tmp_path / "w", 10**9) as slices:
            for staged in slices:
                _, peak = tracemalloc.get_traced_memory()
                (path,) = staged.values()
                assert path.stat().st_size == len(payload)
                assert hashlib.sha256(path.read_bytes()).digest() == hashlib.sha256(payload).digest()
    finally:
        tracemalloc.stop()
    assert peak < 4 * 1024 * 1024, f"peak {peak} bytes while staging a {len(payload)} byte file"
