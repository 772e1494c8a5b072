from pathlib import Path

import pytest

from synapse_dagster.core.sources.files import SourceError
from synapse_dagster.core.sources.listing import check_source
from synapse_dagster.core.sources.location import parse_source
from synapse_dagster.core.sources.local import list_local, resolve_local_source


def write(root: Path, rel: str, data: bytes = b"x") -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def test_listing_is_sorted_stats_files_and_marks_junk(tmp_path):
    for rel in ["b/2.json", "a/1.png", "a/.DS_Store", "@eaDir/a/thumb.png", "._a.png", "top.txt"]:
        write(tmp_path, rel, b"12345")
    files = list(list_local(tmp_path))
    assert [f.relative_path for f in files] == ["._a.png", "top.txt", "@eaDir/a/thumb.png", "a/.DS_Store", "a/1.png", "b/2.json"]
    excluded = {f.relative_path: f.excluded_reason for f in files if f.excluded_reason}
    assert excluded == {
        "._a.png": "macOS resource fork ('._' file)",
        "@eaDir/a/thumb.png": "system folder '@eaDir'",
        "a/.DS_Store": "system file '.DS_Store'",
    }
    png = next(f for f in files if f.relative_path == "a/1.png")
    assert png.size == 5 and png.uri == str(tmp_path / "a" / "1.png") and png.mtime_ns > 0
    assert [f.relative_path for f in list_local(tmp_path, recursive=False)] == ["._a.png", "top.txt"]


def test_resolve_local_source_errors_say_what_is_wrong(tmp_path, monkeypatch):
    write(tmp_path, "data/a.png")
    assert resolve_local_source("data", tmp_path) == tmp_path / "data"
    monkeypatch.setenv("HOME", str(tmp_path))
    assert resolve_local_source("~/data", Path("/")) == tmp_path / "data"
    with pytest.raises(SourceError, match="does not exist"):
        resolve_local_source("missing", tmp_path)
    with pytest.raises(SourceError, match="is a file, not a folder"):
        resolve_local_source("data/a.png", tmp_path)
    with pytest.raises(SourceError, match="is a 's3://' URL, not a local folder"):
        resolve_local_source("s3://bucket/x", tmp_path)




def test_an_empty_or_missing_local_folder_is_explained(tmp_path):
    (tmp_path / "void").mkdir()
    with pytest.raises(SourceError, match="empty"):
        check_source(parse_source(str(tmp_path / "void")))
    with pytest.raises(SourceError, match="does not exist"):
        check_source(parse_source(str(tmp_path / "nope")))
