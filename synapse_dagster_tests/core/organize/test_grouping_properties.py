"""The grouping invariant on real folders with hostile names: every listed file lands in exactly one place.

Names are what users' machines make: both Unicode normalizations of one name (macOS writes NFD), combining
marks, spaces, leading and trailing dots, names of dots only, names of 255 UTF-8 bytes, names that differ
only in case, and NAS junk. They are created as real files and listed the way a batch is, so what the
filesystem does to them (or refuses: such names are skipped) is part of the test.
"""

from __future__ import annotations

import tempfile
import unicodedata
from collections import Counter
from pathlib import Path, PurePosixPath

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synapse_dagster.core.organize.grouping import GroupingResult, IssueKind, Organization, group_files
from synapse_dagster.core.organize.layouts import Pattern, nfc
from synapse_dagster.core.organize.rules import FileRule, RuleSet
from synapse_dagster.core.organize.specs import CollectionSpecs
from synapse_dagster.core.sources.files import SourceFile
from synapse_dagster.core.sources.listing import list_files
from synapse_dagster.core.sources.location import SourceLocation

SPECS = CollectionSpecs.from_api({
    "id": 9,
    "name": "frames",
    "file_specifications": [
        {"name": "image_1", "extensions": [".png", ".jpg"], "is_required": True},
        {"name": "label_1", "extensions": [".json"], "is_required": True},
        {"name": "volume", "extensions": [".nii.gz"], "is_required": False},
    ],
})
MAX_NAME_BYTES = 255  # what ext4, APFS and NTFS allow per path component

ORGANIZATIONS = (
    Organization(Pattern.NESTED, sidecars=("meta.yaml",)),
    Organization(Pattern.TYPE_SEPARATED),
    Organization(Pattern.FLAT, sidecars=("*.meta.json",)),
    Organization(Pattern.DEEP_NESTED, spec_aliases={"image_1": ("img",)}),
    Organization(Pattern.RULES, rules=RuleSet((FileRule("**/*.png", "image_1"), FileRule("**/*.json", "label_1")),
                                              r"^[^/]+/([^/]+)/")),
)

# Spelled-out troublemakers, each in both normalizations where they differ.
NAMED = ["frame_1", "Frame_1", "FRAME_1", "café", "naïve", "Å", "\u212b", "e\u0301\u0323", "ñandú", "한글", "x y",
         " lead", "trail ", ".hidden", "trail.", "..x", "...", "....", "img", "images", "labels", "meta"]
NAMED += [unicodedata.normalize("NFD", n) for n in NAMED if unicodedata.normalize("NFD", n) != n]
JUNK_FILES = [".DS_Store", "Thumbs.db", "._frame_1.png", "Icon\r", "desktop.ini"]
JUNK_DIRS = ["@eaDir", "#recycle", ".git"]
EXTENSIONS = [".png", ".PNG", ".jpg", ".json", ".nii.gz", ".meta.json", ".txt", "", ".yaml"]

generated = st.text(st.characters(codec="utf-8", categories=("L", "M", "N", "P", "S", "Zs"), exclude_characters="/"),
                    min_size=1, max_size=8)
components = st.one_of(st.sampled_from(NAMED), generated).filter(lambda n: n not in (".", ".."))


def fit(name: str, extension: str = "") -> str:
    """``name`` + ``extension`` cut to at most 255 UTF-8 bytes, as long as a component may be."""
    while len((name + extension).encode()) > MAX_NAME_BYTES:
        name = name[:-1]
    return name + extension


long_names = st.builds(lambda n, ext: fit(n * 255, ext), st.sampled_from(["é", "e\u0301", "a", "한"]),
                       st.sampled_from(EXTENSIONS))
file_names = st.one_of(
    st.builds(lambda n, ext: fit(n, ext), components, st.sampled_from(EXTENSIONS)),
    st.sampled_from(JUNK_FILES + ["meta.yaml", "frame_1.meta.json"]),
    long_names,
)
folders = st.lists(st.one_of(components, st.sampled_from(JUNK_DIRS), long_names.map(lambda n: n.replace(".", "d"))),
                   max_size=2)


@st.composite
def trees(draw) -> list[str]:
    """Relative paths; some repeated in the other normalization or in another case, the clashes that matter."""
    paths = draw(st.lists(st.builds(lambda d, n: "/".join((*d, n)), folders, file_names), max_size=10))
    for path in list(paths):
        variant = draw(st.sampled_from(["", "NFC", "NFD", "case"]))
        if variant == "case":
            paths.append(path.swapcase())
        elif variant:
            paths.append(unicodedata.normalize(variant, path))
    return paths


def make(root: Path, paths: list[str]) -> None:
    """Create every path the filesystem accepts; a name it refuses (or a file where a folder must go) is skipped."""
    root.mkdir(parents=True, exist_ok=True)
    for rel in paths:
        path = root / rel
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"x")
        except OSError:
            continue


def listed(root: Path, source_spec: str | None = None, refuse: frozenset[int] = frozenset()) -> list[SourceFile]:
    """The listing, with the files at positions ``refuse`` marked as a listing marks unsafe ones."""
    files = list_files(SourceLocation("local", path=str(root)), source_spec=source_spec)
    return [f._replace(refused_reason="unsafe") if i in refuse else f for i, f in enumerate(files)]


def check(result: GroupingResult, files: list[SourceFile]) -> None:
    """Exactly once across units' files, sidecars and issues (refused ones as refused); one file per spec; keys
    in one spelling."""
    placed = [(f.relative_path, f.source_spec) for u in result.units for f in (*u.files.values(), *u.sidecars)]
    reported = [(i.relative_path, i.source_spec) for i in result.issues]
    assert Counter(placed + reported) == Counter((f.relative_path, f.source_spec) for f in files)
    assert {(i.relative_path, i.source_spec) for i in result.issues if i.kind == IssueKind.REFUSED} == {
        (f.relative_path, f.source_spec) for f in files if f.refused_reason}
    keys = [u.group_key for u in result.units]
    assert len(keys) == len(set(keys)) and all(k == nfc(k) for k in keys)
    for unit in result.units:
        in_unit = [f.relative_path for f in unit.files.values()]
        assert len(in_unit) == len(set(in_unit)) and set(unit.files) <= {s.name for s in SPECS.specs}
        for spec, file in unit.files.items():
            assert SPECS.spec(spec).accepts(SPECS.split_name(file.name)[1])
            assert file.source_spec in (None, spec)


def check_joins(result: GroupingResult, pattern: Pattern) -> None:
    """Flat joins stems within one folder only; multi-path joins them across folders and sources."""
    for unit in result.units:
        files = list(unit.files.values())
        if pattern is Pattern.FLAT:
            assert len({nfc(str(PurePosixPath(f.relative_path).parent)) for f in files}) <= 1
        if pattern is Pattern.MULTI_PATH:
            assert {SPECS.split_name(nfc(f.name))[0] for f in files} <= {unit.group_key}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(images=trees(), labels=trees(), refuse=st.frozensets(st.integers(0, 30), max_size=3))
def test_every_listed_file_lands_in_exactly_one_place(images, labels, refuse):
    with tempfile.TemporaryDirectory(prefix="grouping-props-") as folder:
        root = Path(folder)
        make(root / "images", images)
        make(root / "labels", labels)
        files = listed(root, refuse=refuse)
        for organization in ORGANIZATIONS:
            result = group_files(files, SPECS, organization)
            check(result, files)
            check_joins(result, organization.pattern)
        sourced = listed(root / "images", "image_1", refuse) + listed(root / "labels", "label_1")
        result = group_files(sourced, SPECS, Organization(Pattern.MULTI_PATH))
        check(result, sourced)
        check_joins(result, Pattern.MULTI_PATH)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(images=trees(), labels=trees(), shuffled=st.booleans())
def test_grouping_as_the_listing_streams_equals_grouping_by_a_sort(images, labels, shuffled):
    """The streamed path (keys in order) must give exactly what the sorted path gives, or give way to it."""
    from synapse_dagster.core.organize.grouping import _Grouper
    from synapse_dagster.core.tables.row_table import Spill

    with tempfile.TemporaryDirectory(prefix="grouping-props-") as folder:
        root = Path(folder)
        make(root / "images", images)
        make(root / "labels", labels)
        files = listed(root)
        if shuffled:
            files = files[::-1]
        for organization in ORGANIZATIONS:
            grouper = _Grouper(SPECS, organization, {}, Spill())
            streamed, by_sort = grouper.streamed(files), grouper.sorted(files)
            if streamed is not None:
                assert list(streamed.units) == list(by_sort.units)
                assert list(streamed.issues) == list(by_sort.issues)
