"""The two Dagster fixes hold against real processes racing on a real SQLite instance.

Each trial gives six processes (started fresh, so the patch is only where a trial applies it) one free slot of a
pool and lets them claim it at the same instant. Unpatched, several of them get it; patched, exactly one.
"""

from __future__ import annotations

import multiprocessing
import time

import dagster as dg
from dagster._core.instance.ref import InstanceRef

CLAIMERS = 6


def _claim(home: str, start: float, patched: bool, i: int, results) -> None:
    if patched:
        from synapse_dagster.defs.dagster_fixes import apply_dagster_fixes

        apply_dagster_fixes()
    with dg.DagsterInstance.from_ref(InstanceRef.from_dir(home)) as instance:
        storage = instance.event_log_storage
        storage.has_concurrency_limits_table  # connect and migrate before the start line
        while time.time() < start:
            time.sleep(0.001)
        results.put(storage._claim_concurrency_slot("pool", f"run-{i}", "step").value)


def holders_of_one_slot(tmp_path, patched: bool, trial: int = 0) -> int:
    home = tmp_path / f"{'patched' if patched else 'unpatched'}-{trial}"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry: {enabled: false}\n")
    with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home))) as instance:
        instance.event_log_storage.set_concurrency_slots("pool", 1)
    spawn = multiprocessing.get_context("spawn")
    results = spawn.Queue()
    start = time.time() + 6  # every claimer has started (spawn imports Dagster afresh) before the line
    claimers = [spawn.Process(target=_claim, args=(str(home), start, patched, i, results)) for i in range(CLAIMERS)]
    for p in claimers:
        p.start()
    for p in claimers:
        p.join(timeout=60)
    return sum(results.get(timeout=10) == "CLAIMED" for _ in claimers)


def test_one_pool_slot_has_one_holder_however_many_race_for_it(tmp_path):
    patched = holders_of_one_slot(tmp_path, patched=True)
    # The race is timing-dependent: a trial may miss it on a busy machine, so up to five, stopping at the first hit.
    unpatched = next((n for t in range(5) if (n := holders_of_one_slot(tmp_path, patched=False, trial=t)) > 1), 1)
    assert patched == 1
    # The baseline, measured in the same run: if Dagster ever fixes this itself, this line says the patch can go.
    assert unpatched > 1, f"unpatched Dagster gave the slot to {unpatched} of {CLAIMERS} claimers"
