"""Cutting a plan into shards for a cluster, and merging their reports: every valid unit in exactly one shard,
no file in two shards that may run at once."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from synapse_dagster.core.deliver.batch_delivery import Delivered, merged, shards
from synapse_dagster.core.deliver.creation import CreationReport, UnitOutcome
from synapse_dagster.core.deliver.requests import UnitRequests
from synapse_dagster.core.deliver.upload import FileStatus, FileUpload, UploadReport
from synapse_dagster.core.plan.batch_plan import BatchPlan, UnitPlan
from synapse_dagster.core.problems import Problem, ProblemKind
from synapse_dagster.core.sources.files import SourceFile


def file(path: str) -> SourceFile:
    return SourceFile(f"/data/{path}", path, 10, 1)


def unit(key: str, *paths: str, valid: bool = True) -> UnitPlan:
    problems = [] if valid else [Problem(ProblemKind.MISSING_SPEC, "no label")]
    return UnitPlan(key, f"b/{key}", {f"spec_{i}": file(p) for i, p in enumerate(paths)}, {}, problems=problems)


def test_valid_units_are_cut_in_order_and_invalid_ones_are_left_out():
    plan = BatchPlan("b", [unit(f"U{i}", f"U{i}.png", f"U{i}.json", valid=i != 3) for i in range(8)], [],
                     required_specs=frozenset({"spec_0"}))
    cut = list(shards(plan, 3))
    assert [[u.group_key for u in s.plan.units] for s in cut] == [["U0", "U1", "U2"], ["U4", "U5", "U6"], ["U7"]]
    assert not any(s.after_the_others for s in cut)
    assert all(s.plan.batch == "b" and s.plan.required_specs == {"spec_0"} for s in cut)


def test_units_sharing_a_file_with_an_earlier_shard_wait_for_the_others():
    plan = BatchPlan("b", [unit("A", "A.png", "common.json"), unit("B", "B.png"), unit("C", "C.png", "common.json"),
                           unit("D", "D.png")], [])
    cut = list(shards(plan, 2))
    assert [([u.group_key for u in s.plan.units], s.after_the_others) for s in cut] == [
        (["A", "B"], False), (["D"], False), (["C"], True)]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.integers(0, 30), min_size=1, max_size=3), max_size=40), st.integers(1, 7))
def test_every_valid_unit_lands_in_one_shard_and_no_file_in_two_concurrent_ones(files_per_unit, size):
    units = [unit(f"U{i}", *{f"f{n}" for n in names}) for i, names in enumerate(files_per_unit)]
    cut = list(shards(BatchPlan("b", units, []), size))
    placed = [u.group_key for s in cut for u in s.plan.units]
    assert sorted(placed) == sorted(u.group_key for u in units) and len(placed) == len(set(placed))
    concurrent = [s for s in cut if not s.after_the_others]
    assert not any(s.after_the_others for s in cut[:-1])  # the waiting shard, if any, comes last
    assert all(len(s.plan.units) <= size for s in concurrent)
    owners: dict[str, int] = {}
    for index, s in enumerate(concurrent):
        for u in s.plan.units:
            for f in u.files.values():
                assert owners.setdefault(f.fingerprint, index) == index, f"{f.relative_path} in two shards"


def test_merged_reports_hold_every_shards_files_and_units():
    def part(key: str, status: str) -> Delivered:
        upload = FileUpload(f"{key}.png", key, 10, FileStatus.UPLOADED, f"sha-{key}")
        created = CreationReport(outcomes={f"b/{key}": UnitOutcome(f"b/{key}", status, unit_id=1)}, requests_sent=1)
        return Delivered(UploadReport({key: upload}, 2.0), created, UnitRequests(skipped=[(f"b/{key}", ["x"])]))

    both = merged([part("A", "created"), part("B", "existing")], seconds=5.0)
    assert set(both.uploads.files) == {"A", "B"} and both.uploads.seconds == 5.0
    assert {k: o.status for k, o in both.created.outcomes.items()} == {"b/A": "created", "b/B": "existing"}
    assert both.created.requests_sent == 2 and [k for k, _ in both.wanted.skipped] == ["b/A", "b/B"]
