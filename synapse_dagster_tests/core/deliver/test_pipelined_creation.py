"""Unit creation fed while the upload runs, against the real sandbox: units land before the upload ends, exactly
once, and a collision policy that must stop the whole batch still does."""

from __future__ import annotations

import time

import pytest

from synapse_dagster.core.deliver.creation import CollisionPolicy, UnitCreation, UnitRequest, UnitStatus
from synapse_dagster.core.deliver.upload import upload_files
from synapse_dagster.core.sources.local import list_local
from synapse_dagster_tests.core.deliver.test_upload_and_creation import requests_for, uploaded_pngs


def server_keys(sandbox, collection) -> list[str]:
    return sorted(u["meta"]["dataset_key"] for u in sandbox.units(collection))


def wait_for(condition, seconds: float = 20.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def unit_of(i: int, upload) -> UnitRequest:
    files = {spec: {"checksum": upload.checksum, "path": upload.relative_path} for spec in ("image_1", "label_1")}
    return UnitRequest(f"p/{i}", files, {"patient_id": f"P{i:04d}", "age": 30, "sex": "F", "dataset_key": f"p/{i}"})


def test_units_are_created_while_later_files_are_still_uploading(sandbox, tmp_path, ledger, collection):
    folder = tmp_path / "files"
    folder.mkdir()
    for i in range(6):
        (folder / f"f{i}.json").write_text(f'{{"i": {i}}}')
    files = sorted(list_local(folder), key=lambda f: f.relative_path)
    index = {f.fingerprint: i for i, f in enumerate(files)}
    seen_during_upload: list[list[str]] = []

    with UnitCreation(sandbox.client(), collection, [f"p/{i}" for i in range(6)], ledger=ledger, target=sandbox.url,
                      batch="b", batch_size=2) as creation:

        def slice_done(outcome):
            offered = [unit_of(index[u.fingerprint], u) for u in outcome]
            creation.offer(offered)
            # The upload waits here, before its next slice: the units just offered must land meanwhile.
            wanted = {r.dataset_key for r in offered}
            assert wait_for(lambda: wanted <= set(server_keys(sandbox, collection))), wanted
            seen_during_upload.append(server_keys(sandbox, collection))

        upload_files(sandbox.client(), files, ledger=ledger, target=sandbox.url, slice_size=2, max_workers=2,
                     on_slice_done=slice_done)
        report = creation.finish()

    assert [len(keys) for keys in seen_during_upload] == [2, 4, 6]
    assert server_keys(sandbox, collection) == [f"p/{i}" for i in range(6)]
    assert {o.status for o in report.outcomes.values()} == {UnitStatus.CREATED} and report.requests_sent == 3


def test_an_offer_made_twice_creates_its_units_once(sandbox, tmp_path, ledger, collection):
    files, uploads = uploaded_pngs(sandbox, tmp_path, ledger, 3)
    requests = requests_for(files, uploads, "twice")
    with UnitCreation(sandbox.client(), collection, [r.dataset_key for r in requests], ledger=ledger,
                      target=sandbox.url, batch="b", batch_size=2) as creation:
        creation.offer(requests[:2])
        creation.offer(requests)
        report = creation.finish()
    assert server_keys(sandbox, collection) == ["twice/0", "twice/1", "twice/2"]
    assert report.requests_sent == 2


@pytest.mark.parametrize("policy, created", [(CollisionPolicy.FAIL, []), (CollisionPolicy.SKIP, ["k/1", "k/2", "k/3"])])
def test_a_collision_offered_last_still_stops_the_batch_under_fail(sandbox, tmp_path, ledger, collection, policy,
                                                                   created):
    files, uploads = uploaded_pngs(sandbox, tmp_path, ledger, 4)
    requests = requests_for(files, uploads, "k")
    other = requests_for(files, uploads, "k", {0: {"age": 99}})[0]  # k/0 exists with other meta
    sandbox.client().create_data_units([other.payload(collection)])
    with UnitCreation(sandbox.client(), collection, [r.dataset_key for r in requests], ledger=ledger,
                      target=sandbox.url, batch="b", batch_size=1, on_collision=policy) as creation:
        for r in reversed(requests):  # the colliding unit's files are the last to be confirmed
            creation.offer([r])
        report = creation.finish()
    assert server_keys(sandbox, collection) == sorted(["k/0", *created])
    assert report.outcomes["k/0"].status == UnitStatus.COLLIDED
    expected = UnitStatus.FAILED if policy == CollisionPolicy.FAIL else UnitStatus.CREATED
    assert {report.outcomes[f"k/{i}"].status for i in (1, 2, 3)} == {expected}


def test_an_error_before_the_first_send_stops_all_sending_and_is_raised(sandbox, tmp_path, ledger, collection):
    files, uploads = uploaded_pngs(sandbox, tmp_path, ledger, 2)
    requests = requests_for(files, uploads, "stop")
    sandbox.set_faults([{"match": {"method": "GET", "path": "^data_units/$"}, "action": "error", "status": 400,
                         "times": 1}])
    try:
        with UnitCreation(sandbox.client(), collection, [r.dataset_key for r in requests], ledger=ledger,
                          target=sandbox.url, batch="b", batch_size=1) as creation:
            creation.offer(requests)
            with pytest.raises(Exception) as raised:
                creation.finish()
    finally:
        sandbox.set_faults([])
    assert getattr(raised.value, "status_code", None) == 400
    assert server_keys(sandbox, collection) == []
    assert ledger.pending_keys(sandbox.url, collection) == []
