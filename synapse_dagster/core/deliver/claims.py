"""One delivery of a batch at a time: a claim in the ledger that a second launch waits for, and a dead run lets go.

Two launches of the same partition (two sensor ticks, a UI click during a backfill) would otherwise both find
nothing in the ledger and both upload and create everything. The claim is a row with a heartbeat: the holder
renews it on a background thread; a run that was killed stops renewing (and on the same host its PID is gone),
so the next run takes over at once or after ``lease`` seconds, and resumes from the ledger. Waiting sleeps; it
never spins.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from dataclasses import dataclass
from collections.abc import Callable, Iterator

import sqlalchemy as sa

from synapse_dagster.core.deliver.ledger import Ledger
from synapse_dagster.core.deliver.ledger_tables import batch_claims
from synapse_dagster.core.processes import process_alive, this_host

DEFAULT_LEASE = 60.0
DEFAULT_WAIT = 3600.0


class ClaimTimeout(RuntimeError):
    """Another run held the batch for longer than we were willing to wait."""


@dataclass(frozen=True)
class Claimant:
    """Who holds a claim: a run (its id), on a host, in a process. A claim whose process is gone on this host, or
    whose heartbeat is older than the lease, is free again."""

    owner: str
    host: str
    pid: int


def claimant(owner: str) -> Claimant:
    return Claimant(owner, this_host(), os.getpid())


@contextlib.contextmanager
def batch_claim(ledger: Ledger, target: str, scope: str, me: Claimant, *, lease: float = DEFAULT_LEASE,
                wait: float = DEFAULT_WAIT, poll: float = 1.0, on_wait: Callable[[], None] | None = None) -> Iterator[None]:
    """Hold ``scope`` for the ``with`` block: wait (sleeping ``poll`` seconds at a time) while a live run holds it."""
    deadline = time.monotonic() + wait
    told = False
    while not try_claim(ledger, target, scope, me, lease):
        if time.monotonic() > deadline:
            raise ClaimTimeout(f"another run has been delivering {scope} for over {wait:.0f}s; try again later")
        if on_wait is not None and not told:
            on_wait()
            told = True
        time.sleep(poll)
    stop = threading.Event()
    beat = threading.Thread(target=_heartbeat, args=(ledger, target, scope, me, lease / 3, stop), daemon=True)
    beat.start()
    try:
        yield
    finally:
        stop.set()
        beat.join(timeout=5)
        release_claim(ledger, target, scope, me)


def _heartbeat(ledger: Ledger, target: str, scope: str, me: Claimant, every: float, stop: threading.Event) -> None:
    while not stop.wait(every):
        with contextlib.suppress(Exception):  # a missed beat only shortens the lease; the work goes on
            renew_claim(ledger, target, scope, me)


def try_claim(ledger: Ledger, target: str, scope: str, me: Claimant, lease: float) -> bool:
    """Take ``scope`` (e.g. one batch of one collection) for ``me`` unless a live claimant holds it.

    Compare-and-set on the row as read, so two processes taking over one dead claim cannot both win, on SQLite
    and on Postgres alike.
    """
    c = batch_claims.c
    now = time.time()
    mine = {"owner": me.owner, "host": me.host, "pid": me.pid, "heartbeat_at": now}
    with ledger.transaction() as conn:
        row = conn.execute(sa.select(c.owner, c.host, c.pid, c.heartbeat_at).where(
            c.target == target, c.scope == scope)).first()
        if row is None:
            fresh = ledger.upsert(batch_claims).values(target=target, scope=scope, **mine).on_conflict_do_nothing()
            return conn.execute(fresh).rowcount == 1
        if not _claim_is_free(tuple(row), me, now, lease):
            return False
        taken = conn.execute(sa.update(batch_claims).where(
            c.target == target, c.scope == scope, c.owner == row.owner, c.heartbeat_at == row.heartbeat_at).values(**mine))
        return taken.rowcount == 1


def renew_claim(ledger: Ledger, target: str, scope: str, me: Claimant) -> None:
    c = batch_claims.c
    with ledger.transaction() as conn:
        conn.execute(sa.update(batch_claims).where(c.target == target, c.scope == scope, c.owner == me.owner)
                     .values(heartbeat_at=time.time()))


def release_claim(ledger: Ledger, target: str, scope: str, me: Claimant) -> None:
    c = batch_claims.c
    with ledger.transaction() as conn:
        conn.execute(sa.delete(batch_claims).where(c.target == target, c.scope == scope, c.owner == me.owner))


def _claim_is_free(row: tuple[str, str, int, float], me: Claimant, now: float, lease: float) -> bool:
    owner, host, pid, heartbeat_at = row
    if owner == me.owner or heartbeat_at < now - lease:
        return True
    return host == me.host and not process_alive(pid)
