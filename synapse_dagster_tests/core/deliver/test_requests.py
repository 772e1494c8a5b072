"""Joining the plan with the uploads: only units whose every file was confirmed are asked for, by checksum."""

from __future__ import annotations

from synapse_dagster.core.deliver.requests import ReadyUnits, unit_requests
from synapse_dagster.core.deliver.upload import FileStatus, FileUpload, UploadReport
from synapse_dagster.core.plan.batch_plan import BatchPlan, UnitPlan
from synapse_dagster.core.problems import Problem, ProblemKind
from synapse_dagster.core.sources.files import SourceFile


def file(path: str) -> SourceFile:
    return SourceFile(f"/data/{path}", path, 10, 1)


def test_requests_carry_the_confirmed_checksums_and_skip_units_with_a_missing_file():
    ok = UnitPlan("A", "b/A", {"image_1": file("A/x.png"), "label_1": file("A/x.json")}, {"dataset_key": "b/A"})
    half = UnitPlan("B", "b/B", {"image_1": file("B/x.png"), "label_1": file("B/x.json")}, {"dataset_key": "b/B"})
    held = UnitPlan("C", "b/C", {"image_1": file("C/x.png")}, {}, problems=[Problem(ProblemKind.MISSING_SPEC, "no label")])
    uploads = UploadReport({
        f.fingerprint: FileUpload(f.relative_path, f.fingerprint, f.size, FileStatus.UPLOADED, f"sha-{f.relative_path}", 1)
        for f in (*ok.files.values(), half.files["image_1"])
    } | {half.files["label_1"].fingerprint: FileUpload("B/x.json", half.files["label_1"].fingerprint, 10,
                                                       FileStatus.FAILED, error="HTTP 403")}, seconds=1.0)
    wanted = unit_requests(BatchPlan("b", [ok, half, held], []), uploads)
    requests, skipped = wanted.requests, wanted.skipped
    assert [r.dataset_key for r in requests] == ["b/A"]
    assert requests[0].files == {"image_1": {"checksum": "sha-A/x.png", "path": "A/x.png"},
                                 "label_1": {"checksum": "sha-A/x.json", "path": "A/x.json"}}
    assert requests[0].payload(5) == {"data_collection": 5, "files": requests[0].files, "meta": {"dataset_key": "b/A"}}
    assert skipped == [("b/B", ["file B/x.json (label_1): HTTP 403"])] and wanted.held_back == []

    why = "file B/x.json (label_1) rejected by the SDK content guard: SCRIPT_INJECTION(script_tag) at byte 0"
    rejected = FileUpload("B/x.json", half.files["label_1"].fingerprint, 10, FileStatus.REJECTED, error=why)
    uploads.files[rejected.fingerprint] = rejected
    wanted = unit_requests(BatchPlan("b", [ok, half], []), uploads)
    assert wanted.skipped == [] and wanted.held_back == [("b/B", [why])]  # the finding names its file once


def test_a_unit_is_ready_once_its_last_file_lands_and_never_when_one_failed():
    common = file("common/x.json")  # one file in two units: it counts for both
    a = UnitPlan("A", "b/A", {"image_1": file("A/x.png"), "label_1": common}, {"dataset_key": "b/A"})
    c = UnitPlan("C", "b/C", {"image_1": file("C/x.png"), "label_1": common}, {"dataset_key": "b/C"})
    d = UnitPlan("D", "b/D", {"image_1": file("D/x.png")}, {"dataset_key": "b/D"})
    ready = ReadyUnits(BatchPlan("b", [a, c, d], []))
    assert ready.keys() == ["b/A", "b/C", "b/D"]

    def landed(f, status=FileStatus.UPLOADED):
        ok = status != FileStatus.FAILED
        return FileUpload(f.relative_path, f.fingerprint, f.size, status, f"sha-{f.relative_path}" if ok else None,
                          error=None if ok else "HTTP 500")

    offered = []
    assert ready.arrived([landed(a.files["image_1"])]) == []
    offered += ready.arrived([landed(common, FileStatus.ALREADY_UPLOADED)])
    assert [r.dataset_key for r in offered] == ["b/A"]
    assert ready.arrived([landed(d.files["image_1"], FileStatus.FAILED)]) == []
    offered += ready.arrived([landed(c.files["image_1"])])
    assert offered[1].dataset_key == "b/C"
    assert offered[1].files["label_1"] == {"checksum": "sha-common/x.json", "path": "common/x.json"}
    # What arrived slice by slice is what the whole report allows, request for request.
    uploads = UploadReport(dict(ready.uploads), seconds=1.0)
    assert offered == unit_requests(BatchPlan("b", [a, c, d], []), uploads).requests
