"""The grouping engine on real folders: the seed's five patterns, rules, sidecars, detection, and the invariant."""

import pickle
import unicodedata
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synapse_dagster.core.organize.rules import FileRule, RuleSet, glob_to_regex
from synapse_dagster.core.organize.grouping import IssueKind, Organization, OrganizationError, group_files
from synapse_dagster.core.sources.files import SourceFile
from synapse_dagster.core.sources.local import list_local
from synapse_dagster.core.organize.detection import detect_pattern
from synapse_dagster.core.organize.layouts import Pattern, SpecNames
from synapse_dagster.core.organize.specs import CollectionSpecs

SPECS = CollectionSpecs.from_api({
    "id": 7,
    "name": "scans",
    "file_specifications": [
        {"name": "image_1", "extensions": ["PNG", ".jpg"], "is_required": True},
        {"name": "label_1", "extensions": [".json"], "is_required": True},
        {"name": "dicom_1", "extensions": ["dcm"], "is_required": False},
    ],
})
# Two specs that both take .png: only folder names (or rules) can tell them apart.
MASK_SPECS = CollectionSpecs.from_api({
    "id": 8,
    "name": "segmentation",
    "file_specifications": [
        {"name": "image_1", "extensions": [".png"], "is_required": True},
        {"name": "mask_1", "extensions": [".png"], "is_required": False},
        {"name": "label_1", "extensions": [".json"], "is_required": True},
    ],
})


def tree(root: Path, paths: list[str]) -> list[SourceFile]:
    for rel in paths:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    return list(list_local(root))


def sourced(root: Path, paths_by_spec: dict[str, list[str]]) -> list[SourceFile]:
    """Multi-path mode: one real folder per spec, listed as that spec's source."""
    files = []
    for spec, paths in paths_by_spec.items():
        tree(root / spec, paths)
        files += list_local(root / spec, source_spec=spec)
    return files


def mapping(result) -> dict[str, dict[str, str]]:
    return {u.group_key: {s: f.relative_path for s, f in u.files.items()} for u in result.units}


def kinds(result) -> dict[str, str]:
    return {i.relative_path: i.kind for i in result.issues}


def test_pattern1_nested_units_with_every_file_accounted(tmp_path):
    files = tree(tmp_path, ["p1/scan.PNG", "p1/label.json", "p1/raw.dcm", "p2/scan.jpg", "p2/label.json", "p3/scan.png",
                            "p4/a.png", "p4/b.png", "p4/label.json", "p1/notes.txt", "loose.png", "meta.xlsx", "p2/.DS_Store"])
    result = group_files(files, SPECS, Organization(Pattern.NESTED), reserved={"meta.xlsx": "metadata sheet"})
    assert mapping(result) == {
        "p1": {"image_1": "p1/scan.PNG", "label_1": "p1/label.json", "dicom_1": "p1/raw.dcm"},
        "p2": {"image_1": "p2/scan.jpg", "label_1": "p2/label.json"},
        "p3": {"image_1": "p3/scan.png"},
        "p4": {"label_1": "p4/label.json"},
    }
    problems = {u.group_key: [(p.kind, str(p)) for p in u.problems] for u in result.units}
    assert problems["p1"] == [] and problems["p2"] == []
    assert problems["p3"] == [("missing_spec", "missing required spec 'label_1 (.json)'")]
    assert problems["p4"] == [("ambiguous_files", "2 files for spec 'image_1' (p4/a.png, p4/b.png); keep one or add a rule")]
    assert kinds(result) == {
        "p1/notes.txt": IssueKind.UNMATCHED, "loose.png": IssueKind.UNMATCHED, "meta.xlsx": IssueKind.METADATA,
        "p2/.DS_Store": IssueKind.EXCLUDED, "p4/a.png": IssueKind.AMBIGUOUS, "p4/b.png": IssueKind.AMBIGUOUS,
    }
    assert "matches no file specification" in next(i.reason for i in result.issues if i.relative_path == "p1/notes.txt")


def test_pattern2_type_separated_folders_pair_by_stem(tmp_path):
    files = tree(tmp_path, ["images/001.png", "images/002.png", "labels/001.json", "labels/002.json", "masks/001.png",
                            "images/sub/003.png", "labels/sub/003.json", "labels/004.json", "readme.md"])
    result = group_files(files, MASK_SPECS, Organization(Pattern.TYPE_SEPARATED))
    assert mapping(result) == {
        "001": {"image_1": "images/001.png", "label_1": "labels/001.json", "mask_1": "masks/001.png"},
        "002": {"image_1": "images/002.png", "label_1": "labels/002.json"},
        "004": {"label_1": "labels/004.json"},
        "sub/003": {"image_1": "images/sub/003.png", "label_1": "labels/sub/003.json"},
    }
    assert [u.group_key for u in result.incomplete_units] == ["004"]
    assert kinds(result) == {"readme.md": IssueKind.UNMATCHED}


def test_pattern3_flat_stems_join_within_a_folder(tmp_path):
    files = tree(tmp_path, ["s_001.png", "s_001.json", "s_002.png", "s_002.json", "s_003.json", "sub/s_001.png", "sub/s_001.json"])
    result = group_files(files, SPECS, Organization(Pattern.FLAT))
    assert [(u.group_key, u.is_complete) for u in result.units] == [
        ("s_001", True), ("s_002", True), ("s_003", False), ("sub/s_001", True)]
    assert result.issues == []


def test_pattern4_deep_nested_subfolders_pick_the_spec(tmp_path):
    files = tree(tmp_path, ["patient_001/img/scan.png", "patient_001/json/label.json", "patient_001/mask/seg.png",
                            "patient_002/img/scan.png", "patient_002/json/label.json", "patient_002/other/x.png"])
    result = group_files(files, MASK_SPECS, Organization(Pattern.DEEP_NESTED, spec_aliases={"image_1": ["img"]}))
    assert mapping(result) == {
        "patient_001": {"image_1": "patient_001/img/scan.png", "label_1": "patient_001/json/label.json",
                        "mask_1": "patient_001/mask/seg.png"},
        "patient_002": {"image_1": "patient_002/img/scan.png", "label_1": "patient_002/json/label.json"},
    }
    # 'other/x.png' names no spec and .png fits two: reported, never guessed.
    assert kinds(result) == {"patient_002/other/x.png": IssueKind.AMBIGUOUS}
    assert "fits several specs (image_1, mask_1)" in result.issues[0].reason


def test_pattern5_multi_path_sources_pair_by_stem(tmp_path):
    images = tree(tmp_path / "nas", ["a.png", "b.png", "deep/c.png"])
    labels = tree(tmp_path / "s3", ["a.json", "b.json", "deep/c.json", "b.txt"])
    files = [SourceFile(f.uri, f.relative_path, f.size, f.mtime_ns, source_spec="image_1") for f in images]
    files += [SourceFile(f.uri, f.relative_path, f.size, f.mtime_ns, source_spec="label_1") for f in labels]
    result = group_files(files, SPECS, Organization(Pattern.MULTI_PATH))
    assert mapping(result) == {
        "a": {"image_1": "a.png", "label_1": "a.json"},
        "b": {"image_1": "b.png", "label_1": "b.json"},
        "c": {"image_1": "deep/c.png", "label_1": "deep/c.json"},
    }
    assert [(i.relative_path, i.kind, i.source_spec) for i in result.issues] == [("b.txt", IssueKind.UNMATCHED, "label_1")]


def test_pattern5_multi_path_joins_by_stem_at_any_depth(tmp_path):
    files = sourced(tmp_path, {"image_1": ["2026/frame_1.png", "frame_2.png"],
                               "label_1": ["frame_1.json", "x/y/frame_2.json"]})
    result = group_files(files, SPECS, Organization(Pattern.MULTI_PATH))
    assert mapping(result) == {"frame_1": {"image_1": "2026/frame_1.png", "label_1": "frame_1.json"},
                               "frame_2": {"image_1": "frame_2.png", "label_1": "x/y/frame_2.json"}}
    assert [u.group_key for u in result.complete_units] == ["frame_1", "frame_2"] and result.issues == []


def test_pattern5_same_stem_in_two_folders_of_one_source_holds_the_unit_back(tmp_path):
    files = sourced(tmp_path, {"image_1": ["2026/frame_1.png", "2027/frame_1.png"], "label_1": ["frame_1.json"]})
    result = group_files(files, SPECS, Organization(Pattern.MULTI_PATH))
    assert [(u.group_key, u.files.keys() == {"label_1"}) for u in result.units] == [("frame_1", True)]
    assert [(p.kind, str(p)) for p in result.units[0].problems] == [(
        "ambiguous_files", "the same stem 'frame_1' in two folders of the source of spec 'image_1' (2026/frame_1.png, "
        "2027/frame_1.png); multi-path units join by stem at any depth, so rename one or use rules")]
    assert {(i.relative_path, i.kind, i.source_spec, i.reason) for i in result.issues} == {
        ("2026/frame_1.png", IssueKind.AMBIGUOUS, "image_1", "the same stem 'frame_1' as '2027/frame_1.png' in another "
         "folder of the source of spec 'image_1'; multi-path units join by stem at any depth, so rename one or use rules"),
        ("2027/frame_1.png", IssueKind.AMBIGUOUS, "image_1", "the same stem 'frame_1' as '2026/frame_1.png' in another "
         "folder of the source of spec 'image_1'; multi-path units join by stem at any depth, so rename one or use rules"),
    }


NFC, NFD = unicodedata.normalize("NFC", "café"), unicodedata.normalize("NFD", "café")  # macOS writes the second


@pytest.mark.parametrize(("organization", "paths"), [
    (Organization(Pattern.NESTED), [f"{NFD}/scan.png", f"{NFC}/label.json"]),
    (Organization(Pattern.TYPE_SEPARATED), [f"images/{NFD}.png", f"labels/{NFC}.json"]),
    (Organization(Pattern.FLAT), [f"{NFD}.png", f"{NFC}.json"]),
    (Organization(Pattern.DEEP_NESTED), [f"{NFD}/img/scan.png", f"{NFC}/json/label.json"]),
    (Organization(Pattern.RULES, rules=RuleSet((), f"^(?P<group_key>{NFC})/")), [f"{NFD}/scan.png", f"{NFC}/label.json"]),
])
def test_names_in_two_unicode_normalizations_key_one_unit(tmp_path, organization, paths):
    result = group_files(tree(tmp_path, paths), SPECS, organization)
    assert [(u.group_key, sorted(u.files), u.is_complete) for u in result.units] == [(NFC, ["image_1", "label_1"], True)]
    assert result.issues == []


def test_a_sidecar_in_the_other_unicode_normalization_finds_its_unit(tmp_path):
    files = tree(tmp_path, [f"{NFC}.png", f"{NFC}.json", f"{NFD}.meta.json"])
    result = group_files(files, SPECS, Organization(Pattern.FLAT, sidecars=("*.meta.json",)))
    assert [(u.group_key, [f.relative_path for f in u.sidecars]) for u in result.units] == [(NFC, [f"{NFD}.meta.json"])]


def test_multi_path_stems_in_two_unicode_normalizations_pair(tmp_path):
    files = sourced(tmp_path, {"image_1": [f"2026/{NFD}.png"], "label_1": [f"{NFC}.json"]})
    result = group_files(files, SPECS, Organization(Pattern.MULTI_PATH))
    assert mapping(result) == {NFC: {"image_1": f"2026/{NFD}.png", "label_1": f"{NFC}.json"}} and result.issues == []


def test_the_same_path_in_two_unicode_normalizations_holds_the_unit_back(tmp_path):
    result = group_files(tree(tmp_path, [f"{NFC}.png", f"{NFD}.png", f"{NFC}.json"]), SPECS, Organization(Pattern.FLAT))
    assert [(u.group_key, sorted(u.files)) for u in result.units] == [(NFC, ["label_1"])]
    assert [(p.kind, str(p)) for p in result.units[0].problems] == [(
        "ambiguous_files", f"2 files for spec 'image_1': '{NFD}.png' (NFD) and '{NFC}.png' (NFC) are the same name in "
        "two Unicode normalizations (NFC/NFD); keep one")]
    assert {(i.relative_path, i.kind, i.reason) for i in result.issues} == {
        (f"{NFC}.png", IssueKind.AMBIGUOUS, f"its name (NFC) and '{NFD}.png' (NFD) are the same name in two Unicode "
         f"normalizations (NFC/NFD); keep one (spec 'image_1', unit '{NFC}')"),
        (f"{NFD}.png", IssueKind.AMBIGUOUS, f"its name (NFD) and '{NFC}.png' (NFC) are the same name in two Unicode "
         f"normalizations (NFC/NFD); keep one (spec 'image_1', unit '{NFC}')"),
    }


def test_names_that_differ_in_case_stay_two_units(tmp_path):
    """Object stores and Linux are case-sensitive: 'Frame' and 'frame' are two names, not one spelled twice."""
    result = group_files(tree(tmp_path, ["Frame.png", "Frame.json", "frame.png", "frame.json"]), SPECS,
                         Organization(Pattern.FLAT))
    assert [(u.group_key, u.is_complete) for u in result.units] == [("Frame", True), ("frame", True)]
    files = sourced(tmp_path / "multi", {"image_1": ["a/Frame.png", "frame.png"], "label_1": ["Frame.json", "frame.json"]})
    result = group_files(files, SPECS, Organization(Pattern.MULTI_PATH))
    assert [(u.group_key, u.is_complete) for u in result.units] == [("Frame", True), ("frame", True)]


def test_refused_files_are_reported_before_anything_else_and_never_join_a_unit(tmp_path):
    listed = tree(tmp_path, ["p1/scan.png", "p1/label.json", "p2/scan.png", "p2/label.json", "p2/.DS_Store", "meta.xlsx"])
    unsafe = {"p2/scan.png": "a link that leaves the source folder", "p2/.DS_Store": "a key with '..'",
              "meta.xlsx": "a link that leaves the source folder"}
    files = [f._replace(refused_reason=unsafe.get(f.relative_path)) for f in listed]
    result = group_files(files, SPECS, Organization(Pattern.NESTED), reserved={"meta.xlsx": "metadata sheet"})
    assert mapping(result) == {"p1": {"image_1": "p1/scan.png", "label_1": "p1/label.json"},
                               "p2": {"label_1": "p2/label.json"}}
    assert [u.group_key for u in result.complete_units] == ["p1"]
    assert {(i.relative_path, i.kind, i.reason) for i in result.issues} == {
        (path, IssueKind.REFUSED, reason) for path, reason in unsafe.items()}


def test_a_refused_file_survives_pickling():
    """Dagster's IO manager pickles the listing between steps; the frozen, slotted record must keep the field."""
    file = SourceFile("/b/x.png", "x.png", 1, 2, source_spec="image_1", etag="e", refused_reason="a key with '..'")
    assert pickle.loads(pickle.dumps(file)) == file


def test_rules_as_organize_files_by_pattern(tmp_path):
    files = tree(tmp_path, ["site_a/patient_001/img/scan.png", "site_a/patient_001/json/label.json",
                            "site_a/patient_002/img/scan.png", "site_a/patient_002/json/label.json",
                            "site_a/patient_002/img/scan.txt", "site_a/notes/readme.png"])
    rules = RuleSet((FileRule("**/img/*.png", "image_1"), FileRule("**/json/*.json", "label_1"),
                     FileRule("**/img/*", "image_1")), r"(?P<group_key>patient_\d+)/(?:img|json)/")
    result = group_files(files, SPECS, Organization(Pattern.RULES, rules=rules))
    assert mapping(result) == {
        "patient_001": {"image_1": "site_a/patient_001/img/scan.png", "label_1": "site_a/patient_001/json/label.json"},
        "patient_002": {"image_1": "site_a/patient_002/img/scan.png", "label_1": "site_a/patient_002/json/label.json"},
    }
    reasons = {i.relative_path: i.reason for i in result.issues}
    assert "does not accept '.txt'" in reasons["site_a/patient_002/img/scan.txt"]
    assert reasons["site_a/notes/readme.png"] == "rules.group_key_regex does not match this path"
    with pytest.raises(OrganizationError, match="maps to spec 'nope', which data collection 7 does not define"):
        group_files(files, SPECS, Organization(Pattern.RULES, rules=RuleSet((FileRule("*", "nope"),))))


def test_globs_follow_the_usual_rules():
    assert glob_to_regex("**/img/*.png").match("a/b/img/x.PNG") and glob_to_regex("**/img/*.png").match("img/x.png")
    assert not glob_to_regex("img/*.png").match("img/sub/x.png")
    assert glob_to_regex("*.{png,jpg}").match("a.jpg") and not glob_to_regex("*.{png,jpg}").match("a.gif")
    assert glob_to_regex("scan_??.png").match("scan_01.png") and not glob_to_regex("scan_??.png").match("scan_1.png")


def test_sidecars_belong_to_their_unit_and_are_never_data(tmp_path):
    files = tree(tmp_path, ["p1/scan.png", "p1/label.json", "p1/meta.yaml", "p2/scan.png", "p2/label.json",
                            "p9/meta.yaml", "meta.yaml"])
    result = group_files(files, SPECS, Organization(Pattern.NESTED, sidecars=("meta.yaml",)))
    units = {u.group_key: u for u in result.units}
    assert [f.relative_path for f in units["p1"].sidecars] == ["p1/meta.yaml"] and units["p2"].sidecars == []
    assert kinds(result) == {"p9/meta.yaml": IssueKind.METADATA, "meta.yaml": IssueKind.UNMATCHED}
    flat = tree(tmp_path / "flat", ["s1.png", "s1.json", "s1.meta.json", "s2.png", "s2.json"])
    result = group_files(flat, SPECS, Organization(Pattern.FLAT, sidecars=("*.meta.json",)))
    assert {u.group_key: [f.name for f in u.sidecars] for u in result.units} == {"s1": ["s1.meta.json"], "s2": []}
    assert mapping(result)["s1"] == {"image_1": "s1.png", "label_1": "s1.json"}


def test_double_extensions_pair_with_their_stem(tmp_path):
    specs = CollectionSpecs.from_api({"id": 1, "name": "ct", "file_specifications": [
        {"name": "volume", "extensions": [".nii.gz"], "is_required": True},
        {"name": "label_1", "extensions": [".json"], "is_required": True}]})
    result = group_files(tree(tmp_path, ["ct_01.nii.gz", "ct_01.json"]), specs, Organization(Pattern.FLAT))
    assert mapping(result) == {"ct_01": {"volume": "ct_01.nii.gz", "label_1": "ct_01.json"}}


@pytest.mark.parametrize(
    ("paths", "expected", "evidence"),
    [
        (["a.png", "a.json", "b.png", "b.json"], Pattern.FLAT, "4 of 4 sampled files sit directly in the batch folder"),
        (["images/1.png", "labels/1.json", "images/2.png"], Pattern.TYPE_SEPARATED, "images, labels are named after"),
        (["p1/img/a.png", "p1/json/a.json", "p2/img/b.png", "p2/json/b.json"], Pattern.DEEP_NESTED, "img, json repeat"),
        (["p1/scan.png", "p1/label.json", "p2/scan.png", "meta.xlsx"], Pattern.NESTED, "3 of 4 sampled files sit in 2"),
    ],
)
def test_pattern_detection_reports_its_evidence(tmp_path, paths, expected, evidence):
    detection = detect_pattern(tree(tmp_path, paths), SpecNames(SPECS))
    assert detection.pattern is expected
    assert any(evidence in e for e in detection.evidence), detection.evidence


names = st.sampled_from(["a", "b", "scan", "label", "meta", ".DS_Store", "Thumbs.db", "img", "x.meta"])
exts = st.sampled_from([".png", ".PNG", ".jpg", ".json", ".dcm", ".txt", ".yaml", ""])
dirs = st.sampled_from(["", "u1/", "u2/", "u2/img/", "images/", "labels/", "@eaDir/", "u3/#recycle/", "u1/json/"])
file_paths = st.lists(st.tuples(dirs, names, exts).map(lambda t: f"{t[0]}{t[1]}{t[2]}"), min_size=0, max_size=25, unique=True).filter(
    lambda paths: not any(other.startswith(f"{p}/") for p in paths for other in paths))  # a name is a file or a folder
organizations = st.sampled_from([
    Organization(Pattern.NESTED, sidecars=("meta.yaml",)),
    Organization(Pattern.TYPE_SEPARATED),
    Organization(Pattern.FLAT, sidecars=("*.meta.yaml",)),
    Organization(Pattern.DEEP_NESTED, spec_aliases={"image_1": ("img",)}),
    Organization(Pattern.RULES, rules=RuleSet((FileRule("**/*.png", "image_1"), FileRule("**/*.json", "label_1")), r"^([^/]+)/")),
])


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(paths=file_paths, organization=organizations, multi_path=st.booleans())
def test_every_file_lands_in_exactly_one_place(tmp_path_factory, paths, organization, multi_path):
    root = tmp_path_factory.mktemp("prop")
    files = tree(root, paths)
    if multi_path:  # pattern 5: the same files as if each came from a per-spec source
        files = [SourceFile(f.uri, f.relative_path, f.size, f.mtime_ns, source_spec=("image_1", "label_1")[i % 2])
                 for i, f in enumerate(files)]
        organization = Organization(Pattern.MULTI_PATH)
    result = group_files(files, SPECS, organization, reserved={"meta.xlsx": "sheet"})
    placed = [f.relative_path for u in result.units for f in (*u.files.values(), *u.sidecars)]
    reported = [i.relative_path for i in result.issues]
    assert sorted(placed + reported) == sorted(f.relative_path for f in files)
    assert len(set(placed + reported)) == len(files)
    for unit in result.units:  # a unit never holds a file under a spec that rejects its extension
        for spec, f in unit.files.items():
            assert SPECS.spec(spec).accepts(SPECS.split_name(f.name)[1])
