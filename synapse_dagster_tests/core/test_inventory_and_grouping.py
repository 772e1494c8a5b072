import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synapse_dagster.core.grouping import IssueKind, group_files
from synapse_dagster.core.inventory import SourceError, SourceFile, list_local, resolve_local_source
from synapse_dagster.core.specs import CollectionSpecs
from synapse_dagster.pipeline_config import GroupBy

SPECS = CollectionSpecs.from_api(
    {
        "id": 7,
        "name": "scans",
        "file_specifications": [
            {"name": "image_1", "extensions": ["PNG", ".jpg"], "is_required": True},
            {"name": "label_1", "extensions": [".json"], "is_required": True},
            {"name": "dicom_1", "extensions": ["dcm"], "is_required": False},
        ],
    }
)


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
    with pytest.raises(SourceError, match="'s3://' sources are not supported yet"):
        resolve_local_source("s3://bucket/x", tmp_path)


def test_pattern1_subdirectory_units_with_every_file_accounted(tmp_path):
    for rel in ["p1/scan.PNG", "p1/label.json", "p1/raw.dcm", "p2/scan.jpg", "p2/label.json", "p3/scan.png",
                "p4/a.png", "p4/b.png", "p4/label.json", "p1/notes.txt", "loose.png", "meta.xlsx", "p2/.DS_Store"]:
        write(tmp_path, rel)
    files = list(list_local(tmp_path))
    result = group_files(files, SPECS, GroupBy.SUBDIRECTORY, reserved={"meta.xlsx": "metadata sheet"})
    units = {u.group_key: u for u in result.units}
    assert sorted(units) == ["p1", "p2", "p3", "p4"]
    assert {s: f.relative_path for s, f in units["p1"].files.items()} == {
        "image_1": "p1/scan.PNG", "label_1": "p1/label.json", "dicom_1": "p1/raw.dcm"}
    assert units["p1"].is_complete and units["p2"].is_complete
    assert units["p3"].problems == ["missing required spec 'label_1 (.json)'"]
    assert units["p4"].problems == ["2 files for spec 'image_1' (p4/a.png, p4/b.png); keep one or add a rule"]
    kinds = {i.relative_path: i.kind for i in result.issues}
    assert kinds == {
        "p1/notes.txt": IssueKind.UNMATCHED,
        "loose.png": IssueKind.UNMATCHED,
        "meta.xlsx": IssueKind.METADATA,
        "p2/.DS_Store": IssueKind.EXCLUDED,
        "p4/a.png": IssueKind.AMBIGUOUS,
        "p4/b.png": IssueKind.AMBIGUOUS,
    }
    assert "matches no file specification" in next(i.reason for i in result.issues if i.relative_path == "p1/notes.txt")


def test_pattern3_flat_stems(tmp_path):
    for rel in ["s_001.png", "s_001.json", "s_002.png", "s_002.json", "s_003.json", "sub/s_001.png", "sub/s_001.json"]:
        write(tmp_path, rel)
    result = group_files(list_local(tmp_path), SPECS, GroupBy.STEM)
    assert [(u.group_key, u.is_complete) for u in result.units] == [
        ("s_001", True), ("s_002", True), ("s_003", False), ("sub/s_001", True)]
    assert result.issues == []


def test_multi_path_files_take_their_source_spec(tmp_path):
    files = [
        SourceFile("/i/a.png", "a.png", 1, 1, source_spec="image_1"),
        SourceFile("/l/a.json", "a.json", 1, 1, source_spec="label_1"),
        SourceFile("/l/b.txt", "b.txt", 1, 1, source_spec="label_1"),
    ]
    result = group_files(files, SPECS, GroupBy.STEM)
    assert [(u.group_key, sorted(u.files)) for u in result.units] == [("a", ["image_1", "label_1"])]
    assert [(i.relative_path, i.kind) for i in result.issues] == [("b.txt", IssueKind.UNMATCHED)]


names = st.sampled_from(["a", "b", "c", "scan", "label", ".DS_Store", "Thumbs.db"])
exts = st.sampled_from([".png", ".PNG", ".jpg", ".json", ".dcm", ".txt", ""])
dirs = st.sampled_from(["", "u1/", "u2/", "u2/deep/", "@eaDir/", "u3/#recycle/"])
file_paths = st.lists(st.tuples(dirs, names, exts).map(lambda t: f"{t[0]}{t[1]}{t[2]}"), min_size=0, max_size=25, unique=True)


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(paths=file_paths, group_by=st.sampled_from(list(GroupBy)))
def test_every_file_lands_in_exactly_one_place(tmp_path_factory, paths, group_by):
    root = tmp_path_factory.mktemp("prop")
    for rel in paths:
        write(root, rel)
    files = list(list_local(root))
    result = group_files(files, SPECS, group_by)
    placed = [f.relative_path for u in result.units for f in u.files.values()]
    reported = [i.relative_path for i in result.issues]
    assert sorted(placed + reported) == sorted(f.relative_path for f in files)
    assert len(set(placed + reported)) == len(placed) + len(reported)
