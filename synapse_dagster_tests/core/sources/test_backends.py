"""One suite for every source back end (local disk, S3, GCS, SFTP): the same batch, the same promises.

Each test runs once per back end against its real server (see conftest.py) and asserts on what the server
returned: names, sizes, content tags, bytes and error messages.
"""

from __future__ import annotations

import pytest

from synapse_dagster.core.sources import s3 as remote_s3
from synapse_dagster.core.sources.files import SourceError
from synapse_dagster.core.sources.listing import check_source, list_files, list_subfolders, read_bytes
from synapse_dagster.core.sources.storage import resolve_storage_path
from synapse_dagster_tests.core.sources.trees import TOP_LEVEL_FILES, TREE, assert_tree_listed, by_path


def test_lists_nested_folders_with_junk_marked(backend):
    backend.put_tree(TREE, "in/")
    backend.put("in2/not-mine.txt", b"a sibling folder must not leak in")
    location = backend.location("in")
    check_source(location, backend.options)
    files = list(list_files(location, backend.options, source_spec="image_1"))
    assert_tree_listed(files, location.uri.rstrip("/") + "/", etags=backend.etags)
    assert {f.source_spec for f in files} == {"image_1"}
    flat = list(list_files(location, backend.options, recursive=False))
    assert {f.relative_path for f in flat} == TOP_LEVEL_FILES


def test_reads_back_exactly_the_bytes_listed(backend):
    backend.put_tree(TREE, "in/")
    location = backend.location("in")
    for f in list_files(location, backend.options):
        assert read_bytes(f, location, backend.options, 2**20) == TREE[f.relative_path]
    big = next(f for f in list_files(location, backend.options) if f.relative_path == "P0001/scan.png")
    with pytest.raises(ValueError, match="more than 10"):
        read_bytes(big, location, backend.options, 10)


def test_subfolders_after_a_name_skip_junk(backend):
    for rel in ["b1/x", "b1/y/z", "b10/x", "b2/x", "c/x", "@eaDir/x", "#recycle/x", "file.txt"]:
        backend.put(f"drop/{rel}", b"1")
    backend.put("drop2/b9/x", b"a sibling prefix: its folders are not drop's")
    location = backend.location("drop")
    assert list(list_subfolders(location, backend.options)) == ["b1", "b10", "b2", "c"]
    assert list(list_subfolders(location, backend.options, start_after="b1")) == ["b10", "b2", "c"]
    assert list(list_subfolders(location, backend.options, start_after="b2")) == ["c"]
    assert list(list_subfolders(location, backend.options, start_after="c")) == []
    assert list(list_subfolders(location.child("b1"), backend.options)) == ["y"]


def test_listing_is_lazy(backend, monkeypatch):
    if backend.name == "gcs":
        pytest.skip("gcp-storage-emulator ignores page sizes and answers with every object at once")
    monkeypatch.setattr(remote_s3, "PAGE_SIZE", 2)  # object stores page; folder walkers read a folder at a time
    backend.put_tree(TREE, "in/")
    stream = list_files(backend.location("in"), backend.options)
    next(stream)
    backend.put("in/P0002/zz-late.txt", b"late")  # in a folder (or page) not read yet: only a lazy listing sees it
    assert "P0002/zz-late.txt" in {f.relative_path for f in stream}


def test_resumes_after_a_key_where_the_store_can(backend):
    backend.put_tree(TREE, "in/")
    location = backend.location("in")
    if not backend.resumable:
        with pytest.raises(ValueError, match="cannot resume"):
            list(list_files(location, backend.options, start_after="meta.xlsx"))
        return
    rest = [f.relative_path for f in list_files(location, backend.options, start_after="P0001/scan.png")]
    assert rest == [k for k in sorted(TREE) if k > "P0001/scan.png"]


def test_storage_config_resolves_to_a_listable_location(backend):
    backend.put_tree(TREE, "in/")
    location, options = resolve_storage_path(f"{backend.storage_path}/in/P0001", backend.storage, backend.options)
    assert location == backend.location("in/P0001")
    check_source(location, options)
    assert sorted(f.relative_path for f in list_files(location, options)) == ["._scan.png", "label.json", "scan.png"]
    listed = by_path(list(list_files(location, options)))
    assert read_bytes(listed["label.json"], location, options, 100) == TREE["P0001/label.json"]


def test_a_missing_folder_is_explained(backend):
    backend.put("here/x.txt", b"1")
    missing = backend.location("not-here")
    with pytest.raises(SourceError, match=backend.missing) as err:
        check_source(missing, backend.options)
    assert "not-here" in str(err.value)
