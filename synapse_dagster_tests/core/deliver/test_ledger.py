"""The ledger on SQLite and on a real Postgres server: the same rows, the same claims, no password in sight."""

from __future__ import annotations

import os
import threading

import pytest
import sqlalchemy as sa

from synapse_dagster.core.deliver.claims import Claimant, batch_claim, release_claim, try_claim
from synapse_dagster.core.deliver.creation import DeadLetter
from synapse_dagster.core.deliver.ledger import ConfirmedFile, Ledger, LedgerUrlError

TARGET = "http://synapse.test|t1"


def test_units_pending_then_created_and_created_stays_created(ledger):
    ledger.mark_pending(TARGET, 7, ["a", "b"], "b1")
    assert ledger.unit_states(TARGET, 7, ["a", "b", "c"]) == {"a": ("pending", None), "b": ("pending", None)}
    ledger.mark_created(TARGET, 7, [("a", 101)], "b1")
    ledger.mark_pending(TARGET, 7, ["a"], "b2")  # a late pending never demotes a created unit
    ledger.clear_pending(TARGET, 7, ["a", "b"])
    assert ledger.unit_states(TARGET, 7, ["a", "b"]) == {"a": ("created", 101)}
    assert ledger.pending_keys(TARGET, 7) == []
    assert ledger.knows_collection(TARGET, 7) and not ledger.knows_collection(TARGET, 8)
    assert not ledger.knows_collection("other-target", 7)


def test_files_attempted_then_confirmed(ledger):
    fps = [f"fp{i}" for i in range(1200)]  # more than one IN (...) chunk
    ledger.mark_files_attempted(TARGET, fps)
    ledger.mark_files_attempted(TARGET, fps[:3])  # marking twice is harmless
    ledger.record_files(TARGET, [(fp, ConfirmedFile(f"sha-{fp}", i, 10)) for i, fp in enumerate(fps[:1000])])
    assert ledger.attempted_files(TARGET, fps) == set(fps[1000:])
    confirmed = ledger.confirmed_files(TARGET, fps)
    assert len(confirmed) == 1000 and confirmed["fp7"] == ConfirmedFile("sha-fp7", 7, 10)
    ledger.record_files(TARGET, [("fp7", ConfirmedFile("sha-new", 9000, 11))])  # a new version replaces the old
    assert ledger.confirmed_files(TARGET, ["fp7"])["fp7"] == ConfirmedFile("sha-new", 9000, 11)


def test_dead_letters_kept_until_the_unit_lands(ledger):
    letters = [DeadLetter("k1", "create", "400: bad meta", 400, 5), DeadLetter("k2", "upload", "unreadable", None, 0)]
    ledger.record_dead_letters(TARGET, 7, "b1", letters, landed=[])
    assert ledger.dead_letters(TARGET, 7) == [("b1", "k1", "create", "400: bad meta", 400, 5),
                                              ("b1", "k2", "upload", "unreadable", None, 0)]
    ledger.record_dead_letters(TARGET, 7, "b1", [], landed=["k1"])
    assert [row[1] for row in ledger.dead_letters(TARGET, 7, "b1")] == ["k2"]
    assert ledger.dead_letters(TARGET, 7, "b2") == []


def test_tasks_pending_created_and_cleared(ledger):
    ledger.mark_tasks(TARGET, 3, [(1, None), (2, None)], "pending")
    ledger.mark_tasks(TARGET, 3, [(1, 501)], "created")
    ledger.clear_pending_tasks(TARGET, 3, [1, 2])
    assert ledger.task_states(TARGET, 3, [1, 2]) == {1: "created"}
    assert ledger.knows_project(TARGET, 3) and not ledger.knows_project(TARGET, 4)


def test_a_live_claim_holds_and_a_dead_or_stale_one_is_taken_over(ledger):
    me, other = Claimant("run-a", "host-1", os.getpid()), Claimant("run-b", "host-1", os.getpid())
    assert try_claim(ledger, TARGET, "batch 1", me, lease=60)
    assert not try_claim(ledger, TARGET, "batch 1", other, lease=60)
    assert try_claim(ledger, TARGET, "batch 1", me, lease=60)  # the holder may take it again
    assert try_claim(ledger, TARGET, "batch 1", other, lease=0)  # the lease ran out: free
    release_claim(ledger, TARGET, "batch 1", other)
    dead = Claimant("run-dead", "host-1", _a_dead_pid())
    assert try_claim(ledger, TARGET, "batch 2", dead, lease=60)
    assert try_claim(ledger, TARGET, "batch 2", Claimant("run-c", "host-1", os.getpid()), lease=60)
    remote = Claimant("run-far", "host-2", _a_dead_pid())  # a PID on another host proves nothing: wait for the lease
    assert try_claim(ledger, TARGET, "batch 3", remote, lease=60)
    assert not try_claim(ledger, TARGET, "batch 3", Claimant("run-d", "host-1", os.getpid()), lease=60)


def test_racing_claimants_one_wins(ledger):
    """Eight threads take over one stale claim at once: exactly one gets it (compare-and-set on the row)."""
    assert try_claim(ledger, TARGET, "batch 9", Claimant("old", "host-x", 1), lease=60)
    winners: list[str] = []
    barrier = threading.Barrier(8)

    def race(i: int) -> None:
        barrier.wait()
        if try_claim(ledger, TARGET, "batch 9", Claimant(f"run-{i}", "host-y", os.getpid()), lease=-1):
            winners.append(f"run-{i}")

    threads = [threading.Thread(target=race, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(winners) >= 1
    with ledger.engine.connect() as conn:
        owner = conn.execute(sa.text("select owner from batch_claims where scope = 'batch 9'")).scalar_one()
    assert owner in winners


def test_batch_claim_waits_for_the_holder(ledger):
    first, second = Claimant("run-1", "h", os.getpid()), Claimant("run-2", "h", os.getpid())
    order: list[str] = []
    with batch_claim(ledger, TARGET, "batch 5", first):
        waiter = threading.Thread(target=lambda: _claim_and_log(ledger, second, order))
        waiter.start()
        waiter.join(timeout=0.5)
        assert waiter.is_alive()  # still waiting while the first holds it
        order.append("first done")
    waiter.join(timeout=10)
    assert order == ["first done", "second in"]


def _claim_and_log(ledger, me, order):
    with batch_claim(ledger, TARGET, "batch 5", me, poll=0.05):
        order.append("second in")


def test_url_errors_and_password_redaction(postgres_server, tmp_path):
    with pytest.raises(LedgerUrlError, match="sqlite:/// or postgresql://"):
        Ledger("mysql://root@localhost/db")
    url = postgres_server.new_database()
    with Ledger(url) as led:
        assert postgres_server.password not in led.url and "***" in led.url
    wrong = url.replace(postgres_server.password, "not-the-password")
    with pytest.raises(Exception) as failed:
        Ledger(wrong)
    assert "not-the-password" not in str(failed.value)


def _a_dead_pid() -> int:
    import subprocess

    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid
