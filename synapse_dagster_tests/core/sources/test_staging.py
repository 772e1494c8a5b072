"""Local copies of remote files for upload: identical, bounded in disk and memory, removed, verified."""

from __future__ import annotations

import hashlib
import tracemalloc
from pathlib import Path

import pytest

from synapse_dagster.core.sources import s3 as remote_s3
from synapse_dagster.core.sources import sftp as remote_sftp
from synapse_dagster.core.sources.files import SourceError
from synapse_dagster.core.sources.listing import list_files
from synapse_dagster.core.sources.location import parse_source
from synapse_dagster.core.sources.options import ConnectionOptions
from synapse_dagster.core.sources.staging import staged_copies
from synapse_dagster_tests.core.sources.trees import (
    TREE,
)








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


@pytest.mark.parametrize("key", ["../../etc/passwd", "a/..", "..", "a\\..\\..\\x", "/abs/name.png", ""])
def test_a_staged_copy_never_lands_outside_its_folder(tmp_path, key):
    from synapse_dagster.core.sources.staging import staging_path

    target = staging_path(tmp_path / "slice", 3, key)
    assert target.parent == tmp_path / "slice" / "000003" and target.name not in ("", ".", "..")
