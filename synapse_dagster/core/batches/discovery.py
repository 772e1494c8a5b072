"""Finding new batch folders under a source prefix, tick after tick, without missing or repeating one.

Dagster's S3/GCS helpers list the whole prefix every tick, compare modification times (dropping
objects that share the cursor's second) and anchor on a cursor *key* that breaks when it is
rewritten or deleted. Here batches are folders with sortable names and the cursor is a *name*:

- a forward scan lists names after a floor (S3 ``StartAfter``), so a tick costs what is new, not the
  bucket, and a deleted or rewritten batch changes nothing (``StartAfter`` needs no existing key);
- the floor trails the newest taken batches by ``lookback`` names, so a late folder that sorts just
  before recent ones is still seen on the next tick; a rolling full rescan of the names (amortized
  over ticks) catches even older late arrivals;
- a folder is taken only when ready (its marker exists, or its files have settled); until then it
  waits in the cursor and is checked again;
- ``known`` (the registered partitions) decides "seen", so a repeated tick or a lost cursor repeats
  nothing, and work per tick is capped by names listed, readiness checks and wall time.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Protocol

from synapse_dagster.core.batches.keys import check_batch_key

CURSOR_VERSION = 1


class BatchLister(Protocol):
    def names(self, start_after: str | None) -> Iterator[str]:
        """Batch folder names under the source, sorted, strictly after ``start_after``; streamed."""

    def readiness(self, name: str) -> tuple[bool, str]:
        """(ready, why not)."""


@dataclass
class DiscoveryCursor:
    after: str | None = None  # the forward scan's position: last name considered
    pending: list[str] = field(default_factory=list)  # seen, not ready yet
    recent: list[str] = field(default_factory=list)  # the newest taken names (sorted); recent[0] is the floor
    rescan_after: str | None = None  # position of a full rescan in progress
    rescanning: bool = False
    ticks: int = 0
    first_pass_done: bool = False

    def to_json(self) -> str:
        return json.dumps({"v": CURSOR_VERSION, **asdict(self)}, separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str | None) -> DiscoveryCursor:
        """A missing or unreadable cursor starts over; ``known`` keeps that from repeating anything."""
        if not raw:
            return cls()
        try:
            data = json.loads(raw)
            if data.pop("v", None) != CURSOR_VERSION:
                return cls()
            return cls(**data)
        except (ValueError, TypeError):
            return cls()


@dataclass(frozen=True)
class DiscoveryLimits:
    max_batches_per_tick: int = 10
    max_names_per_tick: int = 5000
    max_readiness_checks_per_tick: int = 50
    lookback: int = 100
    full_rescan_every_ticks: int = 20
    max_pending: int = 1000
    seconds_per_tick: float = 30.0


@dataclass
class TickOutcome:
    taken: list[str]
    waiting: dict[str, str]  # name -> why not ready
    unusable: dict[str, str]  # name -> why it cannot be a partition key
    cursor: DiscoveryCursor
    names_listed: int
    readiness_checks: int
    stopped_early: str | None = None  # which cap ended the tick

    def summary(self) -> str:
        parts = [f"{len(self.taken)} new batch(es)", f"{len(self.waiting)} waiting", f"{self.names_listed} names listed"]
        if self.unusable:
            parts.append(f"{len(self.unusable)} unusable folder name(s)")
        if self.stopped_early:
            parts.append(f"stopped early: {self.stopped_early}")
        return ", ".join(parts)


class _Tick:
    def __init__(self, lister: BatchLister, known: Callable[[str], bool], limits: DiscoveryLimits,
                 clock: Callable[[], float], recent: list[str]) -> None:
        self.lister, self.known, self.limits, self.clock = lister, known, limits, clock
        self.recent = set(recent)  # taken in earlier ticks: known without asking the instance
        self.started = clock()
        self.taken: list[str] = []
        self.waiting: dict[str, str] = {}
        self.unusable: dict[str, str] = {}
        self.considered: set[str] = set()
        self.listed = 0
        self.checks = 0
        self.stopped: str | None = None

    def out_of_budget(self) -> bool:
        if self.stopped is None:
            if len(self.taken) >= self.limits.max_batches_per_tick:
                self.stopped = f"max_batches_per_tick ({self.limits.max_batches_per_tick})"
            elif self.listed >= self.limits.max_names_per_tick:
                self.stopped = f"max_names_per_tick ({self.limits.max_names_per_tick})"
            elif self.checks >= self.limits.max_readiness_checks_per_tick:
                self.stopped = f"max_readiness_checks_per_tick ({self.limits.max_readiness_checks_per_tick})"
            elif self.clock() - self.started > self.limits.seconds_per_tick:
                self.stopped = f"seconds_per_tick ({self.limits.seconds_per_tick:.0f}s)"
        return self.stopped is not None

    def consider(self, name: str) -> None:
        if name in self.considered:
            return
        self.considered.add(name)
        try:
            check_batch_key(name)
        except ValueError as exc:
            self.unusable[name] = str(exc)
            return
        if name in self.recent or self.known(name):
            return
        self.checks += 1
        ready, why = self.lister.readiness(name)
        if ready:
            self.taken.append(name)
        else:
            self.waiting[name] = why

    def scan(self, start_after: str | None, stop_before: str | None = None, max_names: int | None = None) -> tuple[str | None, bool]:
        """Consider names after ``start_after``; returns (last name fully considered, reached the end)."""
        last, count = start_after, 0
        for name in self.lister.names(start_after):
            if stop_before is not None and name >= stop_before:
                return last, True
            if self.out_of_budget() or (max_names is not None and count >= max_names):
                return last, False
            self.listed += 1
            count += 1
            self.consider(name)
            last = name
        return last, True


def discover(
    lister: BatchLister,
    known: Callable[[str], bool],
    cursor: DiscoveryCursor,
    limits: DiscoveryLimits = DiscoveryLimits(),
    clock: Callable[[], float] = time.monotonic,
) -> TickOutcome:
    """One sensor tick: which batches to take now, and the cursor for the next tick."""
    tick = _Tick(lister, known, limits, clock, cursor.recent)
    # 1. Batches that were waiting: the oldest first, they may be ready now.
    for name in cursor.pending:
        if tick.out_of_budget():
            break
        tick.consider(name)
    unchecked_pending = [n for n in cursor.pending if n not in tick.considered]
    # 2. Look back from the floor to the scan position: late folders sorting among the recent batches.
    floor = cursor.recent[0] if cursor.recent else cursor.after
    if floor is not None and cursor.after is not None and floor < cursor.after:
        tick.scan(floor, stop_before=cursor.after, max_names=3 * limits.lookback)
    # 3. Forward scan: names after the position are new.
    last, _ = tick.scan(cursor.after)
    after = last if last is not None else cursor.after
    # 4. A rolling full rescan, below the floor, for batches that arrived long after their neighbours.
    rescanning, rescan_after = cursor.rescanning, cursor.rescan_after
    if not rescanning and floor is not None and cursor.ticks % max(1, limits.full_rescan_every_ticks) == 0:
        rescanning, rescan_after = True, None
    if rescanning and floor is not None and not tick.out_of_budget():
        rescan_after, finished = tick.scan(rescan_after, stop_before=floor)
        if finished:
            rescanning, rescan_after = False, None
    waiting = list(dict.fromkeys([*unchecked_pending, *(n for n in tick.waiting)]))[: limits.max_pending]
    recent = sorted(set(cursor.recent) | set(tick.taken))[-max(1, limits.lookback):]
    next_cursor = DiscoveryCursor(
        after=after,
        pending=[n for n in waiting if n not in tick.taken],
        recent=recent,
        rescan_after=rescan_after,
        rescanning=rescanning,
        ticks=cursor.ticks + 1,
        first_pass_done=cursor.first_pass_done or tick.stopped is None,
    )
    return TickOutcome(
        taken=tick.taken,
        waiting=tick.waiting,
        unusable=tick.unusable,
        cursor=next_cursor,
        names_listed=tick.listed,
        readiness_checks=tick.checks,
        stopped_early=tick.stopped,
    )
