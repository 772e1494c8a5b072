"""The upload and creation core against the real sandbox: exactly-once under rejections and lost responses."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from synapse_dagster.core.deliver.creation import UnitRequest, UnitStatus, create_units
from synapse_dagster.core.sources.local import list_local
from synapse_dagster.core.deliver.ledger import Ledger
from synapse_dagster.core.redaction import redact, register_secret
from synapse_dagster.core.deliver.upload import FileStatus, upload_files


def uploaded_pngs(sandbox, tmp_path, ledger, count: int):
    folder = tmp_path / "files"
    folder.mkdir()
    for i in range(count):
        (folder / f"f{i}.json").write_text(f'{{"i": {i}}}')
    files = list(list_local(folder))
    report = upload_files(sandbox.client(), files, ledger=ledger, target=sandbox.url, max_workers=4)
    assert [u.status for u in report.files.values()] == [FileStatus.UPLOADED] * count
    return files, report


def requests_for(files, report, prefix: str, meta_overrides: dict[int, dict] | None = None) -> list[UnitRequest]:
    meta_overrides = meta_overrides or {}
    out = []
    for i, f in enumerate(files):
        checksum = report.files[f.fingerprint].checksum
        out.append(UnitRequest(
            dataset_key=f"{prefix}/{i}",
            files={"image_1": {"checksum": checksum, "path": f.relative_path}, "label_1": {"checksum": checksum, "path": f.relative_path}},
            meta={"patient_id": f"P{i:04d}", "age": 30 + i, "sex": "F", "dataset_key": f"{prefix}/{i}", **meta_overrides.get(i, {})},
        ))
    return out


def test_upload_skips_confirmed_files_and_records_server_checksums(sandbox, tmp_path, ledger):
    files, report = uploaded_pngs(sandbox, tmp_path, ledger, 3)
    for f in files:
        assert report.files[f.fingerprint].checksum == hashlib.sha1(open(f.uri, "rb").read()).hexdigest()
    again = upload_files(sandbox.client(), files, ledger=ledger, target=sandbox.url)
    assert {u.status for u in again.files.values()} == {FileStatus.ALREADY_UPLOADED}
    # A changed file is a new version: it is sent again.
    (tmp_path / "files" / "f0.json").write_text('{"i": "changed"}')
    changed = list(list_local(tmp_path / "files"))
    third = upload_files(sandbox.client(), changed, ledger=ledger, target=sandbox.url)
    assert sorted(u.status for u in third.files.values()) == ["already_uploaded", "already_uploaded", "uploaded"]


def test_one_rejected_unit_does_not_sink_its_batch(sandbox, tmp_path, ledger, collection):
    files, report = uploaded_pngs(sandbox, tmp_path, ledger, 5)
    # Unit 2 passes client-side checks here but the server rejects it (age must be an integer).
    requests = requests_for(files, report, "split", {2: {"age": "old"}})
    result = create_units(sandbox.client(), collection, requests, ledger=ledger, target=sandbox.url, batch="b", batch_size=5)
    statuses = {k: o.status for k, o in result.outcomes.items()}
    assert statuses == {"split/0": "created", "split/1": "created", "split/2": "failed", "split/3": "created", "split/4": "created"}
    assert "age" in result.outcomes["split/2"].error
    assert sorted(u["meta"]["dataset_key"] for u in sandbox.units(collection)) == ["split/0", "split/1", "split/3", "split/4"]
    assert ledger.pending_keys(sandbox.url, collection) == []


def test_lost_response_is_reconciled_not_duplicated(sandbox, tmp_path, ledger, collection):
    files, report = uploaded_pngs(sandbox, tmp_path, ledger, 4)
    requests = requests_for(files, report, "lost")
    sandbox.set_faults([{"match": {"method": "POST", "path": "^/?data_units/$"}, "action": "lose_response", "times": 1}])
    try:
        result = create_units(sandbox.client(), collection, requests, ledger=ledger, target=sandbox.url, batch="b", batch_size=2)
    finally:
        sandbox.set_faults([])
    assert result.reconciled
    assert {o.status for o in result.outcomes.values()} <= {UnitStatus.CREATED, UnitStatus.EXISTING}
    keys = sorted(u["meta"]["dataset_key"] for u in sandbox.units(collection))
    assert keys == ["lost/0", "lost/1", "lost/2", "lost/3"]
    # And a later run knows all of them.
    again = create_units(sandbox.client(), collection, requests, ledger=ledger, target=sandbox.url, batch="b")
    assert {o.status for o in again.outcomes.values()} == {UnitStatus.EXISTING} and again.requests_sent == 0


def test_crash_between_pending_and_response_is_reconciled(sandbox, tmp_path, ledger, collection):
    files, report = uploaded_pngs(sandbox, tmp_path, ledger, 2)
    requests = requests_for(files, report, "crash")
    # Simulate a process that died after the server committed the first unit but before recording it.
    ledger.mark_pending(sandbox.url, collection, ["crash/0"], "b")
    sandbox.client().create_data_units([requests[0].payload(collection)])
    result = create_units(sandbox.client(), collection, requests, ledger=ledger, target=sandbox.url, batch="b")
    assert result.reconciled
    assert result.outcomes["crash/0"].status == UnitStatus.EXISTING
    assert result.outcomes["crash/1"].status == UnitStatus.CREATED
    assert sorted(u["meta"]["dataset_key"] for u in sandbox.units(collection)) == ["crash/0", "crash/1"]


def test_redaction_masks_registered_tokens_and_signatures():
    register_secret("tok-abcdef-123456")
    text = redact("GET http://h/x?signature=abc123&x=1 header Token tok-abcdef-123456 password=hunter2")
    assert "tok-abcdef-123456" not in text and "abc123" not in text and "hunter2" not in text
    assert "signature=***" in text


def _live_folder(tmp_path):
    folder = tmp_path / "live"
    folder.mkdir()
    (folder / "steady.json").write_text('{"a": 1}')
    (folder / "growing.json").write_text('{"b": 1}')
    return folder, list(list_local(folder))


def _rewrite_growing(file, look):
    """A screen that passes every file, and rewrites one right after it was read for upload."""
    if file.name == "growing.json":
        Path(file.uri).write_text('{"b": 1, "more": "written while the upload ran"}')
    return None


def test_a_file_rewritten_after_it_was_read_lands_as_read_and_a_rerun_sends_the_new_content(sandbox, tmp_path, ledger):
    """A file up to IN_MEMORY_MAX is read once: the bytes screened are the bytes hashed and sent, so a rewrite
    after the read cannot put other bytes on the server; the new content is a new listing, sent by the re-run."""
    folder, files = _live_folder(tmp_path)
    report = upload_files(sandbox.client(), files, ledger=ledger, target=sandbox.url, screen=_rewrite_growing)
    by_name = {u.relative_path: u for u in report.files.values()}
    assert [by_name[n].status for n in ("steady.json", "growing.json")] == [FileStatus.UPLOADED] * 2
    assert by_name["growing.json"].checksum == hashlib.sha1(b'{"b": 1}').hexdigest()
    again = upload_files(sandbox.client(), list(list_local(folder)), ledger=ledger, target=sandbox.url)
    assert sorted(u.status for u in again.files.values()) == [FileStatus.ALREADY_UPLOADED, FileStatus.UPLOADED]
    grown = next(u for u in again.files.values() if u.relative_path == "growing.json")
    assert grown.checksum == hashlib.sha1((folder / "growing.json").read_bytes()).hexdigest()


def test_a_streamed_file_that_changes_while_it_is_sent_does_not_count_and_is_sent_again(sandbox, tmp_path, ledger,
                                                                                       monkeypatch):
    """A file too big to hold is streamed from where it lies: if it changes meanwhile, the server got bytes that
    match neither the listing nor what was screened, so the upload is not recorded, and a re-run sends it anew."""
    from synapse_dagster.core.deliver.upload import CHANGED_WHILE_SENT
    from synapse_dagster.core.plan import screening

    monkeypatch.setattr(screening, "IN_MEMORY_MAX", 4)  # every file is streamed
    folder, files = _live_folder(tmp_path)
    report = upload_files(sandbox.client(), files, ledger=ledger, target=sandbox.url, screen=_rewrite_growing)
    by_name = {u.relative_path: u for u in report.files.values()}
    assert by_name["steady.json"].status == FileStatus.UPLOADED
    assert by_name["growing.json"].status == FileStatus.FAILED and "the file changed before it was sent (8 → 48 bytes)" \
        in by_name["growing.json"].error
    assert ledger.confirmed_files(sandbox.url, [f.fingerprint for f in files]).keys() == {
        f.fingerprint for f in files if f.name == "steady.json"}
    again = upload_files(sandbox.client(), list(list_local(folder)), ledger=ledger, target=sandbox.url)
    assert sorted(u.status for u in again.files.values()) == [FileStatus.ALREADY_UPLOADED, FileStatus.UPLOADED]


def test_a_streamed_file_rewritten_with_its_size_while_it_is_sent_does_not_count(sandbox, tmp_path, ledger,
                                                                                monkeypatch):
    """The same size, other bytes: only the listing's modification time tells, after the PUT."""
    from synapse_dagster.core.deliver.upload import CHANGED_WHILE_SENT
    from synapse_dagster.core.plan import screening

    monkeypatch.setattr(screening, "IN_MEMORY_MAX", 4)
    folder, files = _live_folder(tmp_path)

    def same_size(file, look):
        if file.name == "growing.json":
            Path(file.uri).write_text('{"b": 2}')
            os.utime(file.uri, ns=(1, 1))
        return None

    report = upload_files(sandbox.client(), files, ledger=ledger, target=sandbox.url, screen=same_size)
    grown = next(u for u in report.files.values() if u.relative_path == "growing.json")
    assert grown.status == FileStatus.FAILED and CHANGED_WHILE_SENT in grown.error
    assert grown.fingerprint not in ledger.confirmed_files(sandbox.url, [grown.fingerprint])
