"""Fixes for Dagster 1.13 that this project would otherwise hit on every run and every backfill.

- **A waiting step spins.** While a step waits for a pool slot, the executor sleeps
  ``interval_to_next_pending_claim_check()`` seconds between claims; that returns ``min(0, …)``, never more than
  0, so the wait spins a core at 100% and hits the instance database in a tight loop (seen: one core busy for the
  180 s a run waited on the ``synapse_api`` pool). Upstream noticed it (dagster-io/dagster#20367, closed
  unmerged). The fix returns the time until the next pending claim is due, never less than 0.
- **Two steps take one slot.** A claim selects a free slot row ``FOR UPDATE SKIP LOCKED`` and then updates that row
  by id alone. SQLite ignores ``FOR UPDATE``, so two processes that select the same free row both update it and
  both hold "the" slot: with a pool of 2, three steps ran at once (seen in this project's four-batch test). The fix
  updates the row only while it is still free (compare-and-set), so a slot row really is a semaphore; the loser is
  told BLOCKED and claims again later, as Dagster already does when no slot is free.

- **Every SQLite query builds an engine.** The SQLite run, event-log and schedule storages call
  ``create_engine(..., poolclass=NullPool)`` for each connection and dispose of it after, so each of a run's ~100
  events pays for a new engine and recompiles its statements (an engine's compiled cache dies with it): 18 ms per
  event, 1.9 s of the 7.7 s of CPU a 20-unit ``synapse-dagster ingest`` took. The fix keeps one engine per
  process and database URL. Its pool is still ``NullPool``, so every use still opens and closes its own SQLite
  connection, as before: only the engine object (dialect, compiled statements) is reused, never a connection, so
  forked processes and other processes reading the same files see exactly what they saw before.

All are applied once, when the code location loads.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from dagster._core.execution.plan.instance_concurrency_context import InstanceConcurrencyContext
from dagster._core.storage.event_log.schema import ConcurrencySlotsTable
from dagster._core.storage.event_log.sql_event_log import SqlEventLogStorage
from dagster._core.storage.sqlalchemy_compat import db_select
from dagster._utils.concurrency import ConcurrencySlotStatus
from dagster._core.storage.event_log.sqlite import sqlite_event_log
from dagster._core.storage.runs.sqlite import sqlite_run_storage
from dagster._core.storage.schedules.sqlite import sqlite_schedule_storage
import sqlalchemy as db
from sqlalchemy.pool import NullPool


def _interval_to_next_pending_claim_check(self: InstanceConcurrencyContext) -> float:
    if not self._pending_claims or not self._pending_timeouts:
        return 0.0
    return max(0.0, min(ready_at for ready_at in self._pending_timeouts.values()) - time.time())


def _claim_concurrency_slot(self: SqlEventLogStorage, concurrency_key: str, run_id: str,
                            step_key: str) -> ConcurrencySlotStatus:
    slots = ConcurrencySlotsTable.c
    with self.index_connection() as conn:
        free = conn.execute(
            db_select([slots.id]).select_from(ConcurrencySlotsTable)
            .where(db.and_(slots.concurrency_key == concurrency_key, slots.step_key.is_(None),
                           slots.deleted.is_(False)))
            .with_for_update(skip_locked=True).limit(1)
        ).fetchone()
        if not free or not free[0]:
            return ConcurrencySlotStatus.BLOCKED
        taken = conn.execute(
            ConcurrencySlotsTable.update().values(run_id=run_id, step_key=step_key)
            .where(db.and_(slots.id == free[0], slots.step_key.is_(None)))
        ).rowcount
        return ConcurrencySlotStatus.CLAIMED if taken else ConcurrencySlotStatus.BLOCKED


_engines: dict[tuple[int, str, str], Any] = {}
_engines_lock = threading.Lock()


def _cached_engine(create: Any) -> Any:
    def create_engine(url: Any, *args: Any, **kwargs: Any) -> Any:
        if args or kwargs.get("poolclass") is not NullPool:
            return create(url, *args, **kwargs)
        key = (os.getpid(), str(url), repr(sorted(kwargs.get("connect_args", {}).items())))
        with _engines_lock:
            engine = _engines.get(key)
            if engine is None:
                engine = _engines[key] = create(url, *args, **kwargs)
        return engine

    create_engine.synapse_dagster_cached = True  # type: ignore[attr-defined]
    return create_engine


def fix_engine_per_query() -> None:
    for module in (sqlite_event_log, sqlite_run_storage, sqlite_schedule_storage):
        if not getattr(module.create_engine, "synapse_dagster_cached", False):
            module.create_engine = _cached_engine(module.create_engine)


def fix_pool_wait_busy_loop() -> None:
    InstanceConcurrencyContext.interval_to_next_pending_claim_check = _interval_to_next_pending_claim_check


def fix_slot_claim_race() -> None:
    SqlEventLogStorage._claim_concurrency_slot = _claim_concurrency_slot


def apply_dagster_fixes() -> None:
    fix_pool_wait_busy_loop()
    fix_slot_claim_race()
    fix_engine_per_query()
