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
import socket
import threading
import time
from collections.abc import Callable, Iterator

from synapse_dagster.core.deliver.ledger import Claimant, Ledger, release_claim, renew_claim, try_claim

DEFAULT_LEASE = 60.0
DEFAULT_WAIT = 3600.0


class ClaimTimeout(RuntimeError):
    """Another run held the batch for longer than we were willing to wait."""


def claimant(owner: str) -> Claimant:
    return Claimant(owner, socket.gethostname(), os.getpid())


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
