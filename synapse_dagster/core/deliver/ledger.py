"""The ingestion ledger: a durable record of what already reached Synapse.

The SDK has no idempotency key and its dedup code is unreachable, so a re-run uploads every file and
creates every unit again. The ledger remembers, per Synapse target, which file versions were
confirmed (with the checksum the server returned) and which units were created under which
``dataset_key``. A unit is written as *pending* before its create request is sent and as *created*
after the response, so a crash in between leaves a trace that tells the next run to ask the server
instead of guessing.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_SCHEMA = """
create table if not exists uploaded_files (
    target text not null,
    fingerprint text not null,
    checksum text not null,
    data_file_id integer,
    size integer not null,
    uploaded_at real not null,
    primary key (target, fingerprint)
);
create table if not exists units (
    target text not null,
    data_collection integer not null,
    dataset_key text not null,
    status text not null check (status in ('pending', 'created')),
    unit_id integer,
    batch text,
    updated_at real not null,
    primary key (target, data_collection, dataset_key)
);
create index if not exists units_pending on units (target, data_collection, status);
create table if not exists tasks (
    target text not null,
    project integer not null,
    data_unit integer not null,
    status text not null check (status in ('pending', 'created')),
    task_id integer,
    updated_at real not null,
    primary key (target, project, data_unit)
);
create table if not exists dead_letters (
    target text not null,
    data_collection integer not null,
    dataset_key text not null,
    batch text not null,
    stage text not null,
    reason text not null,
    status_code integer,
    attempts integer not null,
    failed_at real not null,
    primary key (target, data_collection, dataset_key)
);
create table if not exists batch_claims (
    target text not null,
    scope text not null,
    owner text not null,
    host text not null,
    pid integer not null,
    heartbeat_at real not null,
    primary key (target, scope)
);
create table if not exists attempted_files (
    target text not null,
    fingerprint text not null,
    attempted_at real not null,
    primary key (target, fingerprint)
);
"""


@dataclass(frozen=True)
class ConfirmedFile:
    checksum: str
    data_file_id: int | None
    size: int


class Ledger:
    """Thread-safe SQLite ledger; one connection, serialized writes (WAL keeps readers unblocked)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=30)
        self._conn.execute("pragma journal_mode=wal")
        self._conn.execute("pragma synchronous=normal")
        self._conn.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("begin immediate")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("rollback")
                raise
            self._conn.execute("commit")

    # --- files ----------------------------------------------------------------------------------

    def confirmed_files(self, target: str, fingerprints: Iterable[str]) -> dict[str, ConfirmedFile]:
        found: dict[str, ConfirmedFile] = {}
        keys = list(fingerprints)
        with self._lock:
            for chunk in _chunks(keys, 500):
                marks = ",".join("?" * len(chunk))
                rows = self._conn.execute(
                    f"select fingerprint, checksum, data_file_id, size from uploaded_files "
                    f"where target = ? and fingerprint in ({marks})",
                    [target, *chunk],
                )
                for fp, checksum, file_id, size in rows:
                    found[fp] = ConfirmedFile(checksum, file_id, size)
        return found

    def record_files(self, target: str, confirmed: Iterable[tuple[str, ConfirmedFile]]) -> None:
        now = time.time()
        rows = [(target, fp, c.checksum, c.data_file_id, c.size, now) for fp, c in confirmed]
        with self._tx() as conn:
            conn.executemany("insert or replace into uploaded_files values (?, ?, ?, ?, ?, ?)", rows)
            conn.executemany("delete from attempted_files where target = ? and fingerprint = ?",
                             [(target, row[1]) for row in rows])

    # --- dead letters: units that failed for good, until a run creates them ---------------------

    def record_dead_letters(self, target: str, collection: int, batch: str, letters: Iterable[Any],
                            landed: Iterable[str]) -> None:
        now = time.time()
        with self._tx() as conn:
            conn.executemany("delete from dead_letters where target = ? and data_collection = ? and dataset_key = ?",
                             [(target, collection, key) for key in landed])
            conn.executemany("insert or replace into dead_letters values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                             [(target, collection, d.dataset_key, batch, d.stage, d.reason, d.status_code, d.attempts, now)
                              for d in letters])

    def dead_letters(self, target: str, collection: int, batch: str | None = None) -> list[tuple]:
        """``(batch, dataset_key, stage, reason, status_code, attempts)`` rows, oldest batch first."""
        where, args = ("and batch = ?", (batch,)) if batch else ("", ())
        with self._lock:
            return list(self._conn.execute(
                "select batch, dataset_key, stage, reason, status_code, attempts from dead_letters "
                f"where target = ? and data_collection = ? {where} order by batch, dataset_key",
                (target, collection, *args)))

    # --- tasks ----------------------------------------------------------------------------------

    def task_states(self, target: str, project: int, units: Iterable[int]) -> dict[int, str]:
        found: dict[int, str] = {}
        with self._lock:
            for chunk in _chunks(list(units), 500):
                marks = ",".join("?" * len(chunk))
                rows = self._conn.execute(
                    f"select data_unit, status from tasks where target = ? and project = ? and data_unit in ({marks})",
                    [target, project, *chunk])
                found.update((unit, status) for unit, status in rows)
        return found

    def knows_project(self, target: str, project: int) -> bool:
        with self._lock:
            return self._conn.execute("select 1 from tasks where target = ? and project = ? limit 1",
                                      (target, project)).fetchone() is not None

    def mark_tasks(self, target: str, project: int, units: Iterable[tuple[int, int | None]], status: str) -> None:
        now = time.time()
        with self._tx() as conn:
            conn.executemany("insert or replace into tasks values (?, ?, ?, ?, ?, ?)",
                             [(target, project, unit, status, task, now) for unit, task in units])

    def clear_pending_tasks(self, target: str, project: int, units: Iterable[int]) -> None:
        with self._tx() as conn:
            conn.executemany("delete from tasks where target = ? and project = ? and data_unit = ? and status = 'pending'",
                             [(target, project, u) for u in units])

    def mark_files_attempted(self, target: str, fingerprints: Iterable[str]) -> None:
        """Written before an upload request: if its answer never arrives, the next run asks the server first."""
        now = time.time()
        with self._tx() as conn:
            conn.executemany("insert or replace into attempted_files values (?, ?, ?)",
                             [(target, fp, now) for fp in fingerprints])

    def attempted_files(self, target: str, fingerprints: Iterable[str]) -> set[str]:
        found: set[str] = set()
        with self._lock:
            for chunk in _chunks(list(fingerprints), 500):
                marks = ",".join("?" * len(chunk))
                rows = self._conn.execute(
                    f"select fingerprint from attempted_files where target = ? and fingerprint in ({marks})",
                    [target, *chunk])
                found.update(r[0] for r in rows)
        return found

    # --- units ----------------------------------------------------------------------------------

    def unit_states(self, target: str, collection: int, keys: Iterable[str]) -> dict[str, tuple[str, int | None]]:
        found: dict[str, tuple[str, int | None]] = {}
        with self._lock:
            for chunk in _chunks(list(keys), 500):
                marks = ",".join("?" * len(chunk))
                rows = self._conn.execute(
                    f"select dataset_key, status, unit_id from units "
                    f"where target = ? and data_collection = ? and dataset_key in ({marks})",
                    [target, collection, *chunk],
                )
                for key, status, unit_id in rows:
                    found[key] = (status, unit_id)
        return found

    def pending_keys(self, target: str, collection: int) -> list[str]:
        with self._lock:
            rows = self._conn.execute(
                "select dataset_key from units where target = ? and data_collection = ? and status = 'pending'",
                (target, collection),
            )
            return [r[0] for r in rows]

    def knows_collection(self, target: str, collection: int) -> bool:
        with self._lock:
            row = self._conn.execute(
                "select 1 from units where target = ? and data_collection = ? limit 1", (target, collection)
            ).fetchone()
            return row is not None

    def mark_pending(self, target: str, collection: int, keys: Iterable[str], batch: str) -> None:
        now = time.time()
        with self._tx() as conn:
            conn.executemany(
                "insert into units values (?, ?, ?, 'pending', null, ?, ?) "
                "on conflict (target, data_collection, dataset_key) do update set "
                "status = 'pending', batch = excluded.batch, updated_at = excluded.updated_at "
                "where units.status = 'pending'",
                [(target, collection, k, batch, now) for k in keys],
            )

    def mark_created(self, target: str, collection: int, created: Iterable[tuple[str, int | None]], batch: str) -> None:
        now = time.time()
        with self._tx() as conn:
            conn.executemany(
                "insert into units values (?, ?, ?, 'created', ?, ?, ?) "
                "on conflict (target, data_collection, dataset_key) do update set "
                "status = 'created', unit_id = excluded.unit_id, updated_at = excluded.updated_at",
                [(target, collection, k, unit_id, batch, now) for k, unit_id in created],
            )

    def clear_pending(self, target: str, collection: int, keys: Iterable[str]) -> None:
        with self._tx() as conn:
            conn.executemany(
                "delete from units where target = ? and data_collection = ? and dataset_key = ? and status = 'pending'",
                [(target, collection, k) for k in keys],
            )


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


@dataclass(frozen=True)
class Claimant:
    """Who holds a claim: a run (its id), on a host, in a process; a claim whose process is gone on this host, or
    whose heartbeat is older than the lease, is free again."""

    owner: str
    host: str
    pid: int


def _claim_is_free(row: tuple[str, str, int, float] | None, me: Claimant, now: float, lease: float) -> bool:
    if row is None:
        return True
    owner, host, pid, heartbeat_at = row
    if owner == me.owner or heartbeat_at < now - lease:
        return True
    return host == me.host and not _process_alive(pid)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def try_claim(ledger: Ledger, target: str, scope: str, me: Claimant, lease: float) -> bool:
    """Take ``scope`` (e.g. one batch of one collection) for ``me`` unless a live claimant holds it."""
    now = time.time()
    with ledger._tx() as conn:
        row = conn.execute("select owner, host, pid, heartbeat_at from batch_claims where target = ? and scope = ?",
                           (target, scope)).fetchone()
        if not _claim_is_free(row, me, now, lease):
            return False
        conn.execute("insert or replace into batch_claims values (?, ?, ?, ?, ?, ?)",
                     (target, scope, me.owner, me.host, me.pid, now))
        return True


def renew_claim(ledger: Ledger, target: str, scope: str, me: Claimant) -> None:
    with ledger._tx() as conn:
        conn.execute("update batch_claims set heartbeat_at = ? where target = ? and scope = ? and owner = ?",
                     (time.time(), target, scope, me.owner))


def release_claim(ledger: Ledger, target: str, scope: str, me: Claimant) -> None:
    with ledger._tx() as conn:
        conn.execute("delete from batch_claims where target = ? and scope = ? and owner = ?", (target, scope, me.owner))
