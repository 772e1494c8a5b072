"""The ingestion ledger: a durable record of what already reached Synapse, behind a database URL.

The SDK has no idempotency key and its dedup code is unreachable, so a re-run uploads every file and
creates every unit again. The ledger remembers, per Synapse target, which file versions were
confirmed (with the checksum the server returned) and which units were created under which
``dataset_key``. A unit is written as *pending* before its create request is sent and as *created*
after the response, so a crash in between leaves a trace that tells the next run to ask the server
instead of guessing.

Synapse stays the truth and the ledger a cache of it, so losing the ledger costs lookups, not duplicates.
It is a SQLite file by default; a deployment whose runs move between hosts (pods, containers) points
every process at one Postgres database instead (SQLite's locking does not hold over network filesystems).
The SQL is SQLAlchemy Core, which Dagster already installs.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from synapse_dagster.core.deliver import ledger_tables as t

_IN_CHUNK = 500  # keys per ``IN (...)``: under SQLite's bound-parameter limit


class IndexedUnit(NamedTuple):
    """A unit as a listing shows it: its key, and a digest of what it holds (``None`` if the record lacks it)."""

    dataset_key: str
    digest: str | None


class LedgerUrlError(ValueError):
    """The ledger URL names a database the ledger does not speak."""


def ledger_engine(url: str | os.PathLike[str]) -> sa.Engine:
    """An engine for a ``sqlite:///…`` or ``postgresql://…`` URL, or for a plain file path (SQLite).

    A bare ``postgresql://`` means psycopg2, the driver dagster-postgres uses too (SQLAlchemy 2.1 would pick
    psycopg 3). SQLite transactions start with ``BEGIN IMMEDIATE``, so two processes writing one file queue
    up instead of failing on a lock upgrade.
    """
    text = str(url)
    if "://" not in text:
        Path(text).expanduser().parent.mkdir(parents=True, exist_ok=True)
        text = f"sqlite:///{Path(text).expanduser()}"
    parsed = sa.make_url(text)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg2")
    if parsed.get_backend_name() == "postgresql":
        return sa.create_engine(parsed, pool_pre_ping=True, pool_size=8, max_overflow=8)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed)
    raise LedgerUrlError(f"the ledger URL must start with sqlite:/// or postgresql://, not {parsed.drivername}://")


def check_ledger_url(url: str) -> None:
    """Fail now, naming the setting, on a URL the ledger cannot use (when the code location loads, not mid-run)."""
    try:
        backend = sa.make_url(url).get_backend_name()
    except sa.exc.ArgumentError:
        raise LedgerUrlError("SYNAPSE_DAGSTER_LEDGER_URL is not a database URL; use sqlite:///path/ledger.sqlite3 "
                             "or postgresql://user:password@host/db") from None
    if backend not in ("sqlite", "postgresql"):
        raise LedgerUrlError(f"the ledger URL must start with sqlite:/// or postgresql://, not {backend}:// "
                             "(SYNAPSE_DAGSTER_LEDGER_URL)")
    if backend == "postgresql":
        try:
            import psycopg2  # noqa: F401
        except ImportError:
            raise LedgerUrlError("a postgresql:// ledger needs the psycopg2 driver: pip install "
                                 "'synapse-dagster[postgres]' (SYNAPSE_DAGSTER_LEDGER_URL)") from None


def _sqlite_engine(url: sa.URL) -> sa.Engine:
    engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # SQLAlchemy emits BEGIN itself, below
        dbapi_conn.execute("pragma journal_mode=wal")
        dbapi_conn.execute("pragma synchronous=normal")

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        conn.exec_driver_sql("begin immediate")

    return engine


def redacted_url(url: str | os.PathLike[str]) -> str:
    """The URL without its password, for logs and errors."""
    text = str(url)
    return sa.make_url(text).render_as_string(hide_password=True) if "://" in text else text


@dataclass(frozen=True)
class ConfirmedFile:
    checksum: str
    data_file_id: int | None
    size: int


class Ledger:
    """The ledger over one database; safe to share between threads (a pooled engine) and processes."""

    def __init__(self, url: str | os.PathLike[str]) -> None:
        self.url = redacted_url(url)
        self.engine = ledger_engine(url)
        t.METADATA.create_all(self.engine, checkfirst=True)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sa.Connection]:
        with self.engine.begin() as conn:
            yield conn

    def upsert(self, table: sa.Table) -> Any:
        """An ``INSERT … ON CONFLICT`` statement in this database's dialect."""
        dialect = postgresql if self.engine.dialect.name == "postgresql" else sqlite
        return dialect.insert(table)

    def _upsert(self, table: sa.Table, rows: list[dict[str, Any]], updates: Iterable[str],
                where: sa.ColumnElement[bool] | None = None, conn: sa.Connection | None = None) -> None:
        """Insert ``rows``; where the primary key exists, update the ``updates`` columns (only where ``where``)."""
        if not rows:
            return
        stmt = self.upsert(table)
        stmt = stmt.on_conflict_do_update(index_elements=[c.name for c in table.primary_key.columns],
                                          set_={name: stmt.excluded[name] for name in updates}, where=where)
        self._execute(stmt, rows, conn)

    def _delete_each(self, table: sa.Table, where: sa.ColumnElement[bool], column: sa.Column[Any],
                     values: Iterable[Any], conn: sa.Connection | None = None) -> None:
        """Delete the rows matching ``where`` whose ``column`` is one of ``values`` (one executemany)."""
        params = [{"value": v} for v in values]
        if not params:
            return
        self._execute(sa.delete(table).where(where, column == sa.bindparam("value")), params, conn)

    def _execute(self, stmt: Any, params: list[dict[str, Any]], conn: sa.Connection | None) -> None:
        """In the caller's transaction when given one, else in one of its own."""
        if conn is not None:
            conn.execute(stmt, params)
            return
        with self.transaction() as own:
            own.execute(stmt, params)

    def _select_in(self, columns: list[sa.ColumnElement[Any]], where: sa.ColumnElement[bool],
                   key: sa.ColumnElement[Any], values: Iterable[Any]) -> Iterator[sa.Row[Any]]:
        items = list(values)
        with self.engine.connect() as conn:
            for start in range(0, len(items), _IN_CHUNK):
                yield from conn.execute(sa.select(*columns).where(where, key.in_(items[start:start + _IN_CHUNK])))

    def _any(self, where: sa.ColumnElement[bool], table: sa.Table) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(sa.literal(1)).select_from(table).where(where).limit(1)).first() is not None

    # --- files ----------------------------------------------------------------------------------

    def confirmed_files(self, target: str, fingerprints: Iterable[str]) -> dict[str, ConfirmedFile]:
        f = t.uploaded_files.c
        rows = self._select_in([f.fingerprint, f.checksum, f.data_file_id, f.size], f.target == target,
                               f.fingerprint, fingerprints)
        return {fp: ConfirmedFile(checksum, file_id, size) for fp, checksum, file_id, size in rows}

    def record_files(self, target: str, confirmed: Iterable[tuple[str, ConfirmedFile]]) -> None:
        now = time.time()
        rows = [{"target": target, "fingerprint": fp, "checksum": c.checksum, "data_file_id": c.data_file_id,
                 "size": c.size, "uploaded_at": now} for fp, c in confirmed]
        if not rows:
            return
        a = t.attempted_files.c
        with self.transaction() as conn:
            self._upsert(t.uploaded_files, rows, ("checksum", "data_file_id", "size", "uploaded_at"), conn=conn)
            self._delete_each(t.attempted_files, a.target == target, a.fingerprint,
                              [r["fingerprint"] for r in rows], conn=conn)

    def mark_files_attempted(self, target: str, fingerprints: Iterable[str]) -> None:
        """Written before an upload request: if its answer never arrives, the next run asks the server first."""
        now = time.time()
        rows = [{"target": target, "fingerprint": fp, "attempted_at": now} for fp in fingerprints]
        self._upsert(t.attempted_files, rows, ("attempted_at",))

    def attempted_files(self, target: str, fingerprints: Iterable[str]) -> set[str]:
        a = t.attempted_files.c
        return {row[0] for row in self._select_in([a.fingerprint], a.target == target, a.fingerprint, fingerprints)}

    # --- dead letters: units that failed for good, until a run creates them ---------------------

    def record_dead_letters(self, target: str, collection: int, batch: str, letters: Iterable[Any],
                            landed: Iterable[str]) -> None:
        now = time.time()
        d = t.dead_letters.c
        rows = [{"target": target, "data_collection": collection, "dataset_key": x.dataset_key, "batch": batch,
                 "stage": x.stage, "reason": x.reason, "status_code": x.status_code, "attempts": x.attempts,
                 "failed_at": now} for x in letters]
        with self.transaction() as conn:
            self._delete_each(t.dead_letters, sa.and_(d.target == target, d.data_collection == collection),
                              d.dataset_key, landed, conn=conn)
            self._upsert(t.dead_letters, rows, ("batch", "stage", "reason", "status_code", "attempts", "failed_at"),
                         conn=conn)

    def dead_letters(self, target: str, collection: int, batch: str | None = None) -> list[tuple]:
        """``(batch, dataset_key, stage, reason, status_code, attempts)`` rows, oldest batch first."""
        d = t.dead_letters.c
        query = sa.select(d.batch, d.dataset_key, d.stage, d.reason, d.status_code, d.attempts).where(
            d.target == target, d.data_collection == collection).order_by(d.batch, d.dataset_key)
        if batch:
            query = query.where(d.batch == batch)
        with self.engine.connect() as conn:
            return [tuple(row) for row in conn.execute(query)]

    # --- tasks ----------------------------------------------------------------------------------

    def task_states(self, target: str, project: int, units: Iterable[int]) -> dict[int, str]:
        k = t.tasks.c
        rows = self._select_in([k.data_unit, k.status], sa.and_(k.target == target, k.project == project),
                               k.data_unit, units)
        return {unit: status for unit, status in rows}

    def knows_project(self, target: str, project: int) -> bool:
        k = t.tasks.c
        return self._any(sa.and_(k.target == target, k.project == project), t.tasks)

    def mark_tasks(self, target: str, project: int, units: Iterable[tuple[int, int | None]], status: str) -> None:
        now = time.time()
        rows = [{"target": target, "project": project, "data_unit": unit, "status": status, "task_id": task,
                 "updated_at": now} for unit, task in units]
        self._upsert(t.tasks, rows, ("status", "task_id", "updated_at"))

    def clear_pending_tasks(self, target: str, project: int, units: Iterable[int]) -> None:
        k = t.tasks.c
        self._delete_each(t.tasks, sa.and_(k.target == target, k.project == project, k.status == "pending"),
                          k.data_unit, units)

    # --- units ----------------------------------------------------------------------------------

    def unit_states(self, target: str, collection: int, keys: Iterable[str]) -> dict[str, tuple[str, int | None]]:
        u = t.units.c
        rows = self._select_in([u.dataset_key, u.status, u.unit_id],
                               sa.and_(u.target == target, u.data_collection == collection), u.dataset_key, keys)
        return {key: (status, unit_id) for key, status, unit_id in rows}

    def pending_keys(self, target: str, collection: int) -> list[str]:
        u = t.units.c
        with self.engine.connect() as conn:
            return list(conn.scalars(sa.select(u.dataset_key).where(
                u.target == target, u.data_collection == collection, u.status == "pending")))

    def knows_collection(self, target: str, collection: int) -> bool:
        u = t.units.c
        return self._any(sa.and_(u.target == target, u.data_collection == collection), t.units)

    def mark_pending(self, target: str, collection: int, keys: Iterable[str], batch: str) -> None:
        """Pending rows for ``keys``; a key already *created* stays created."""
        rows = self._unit_rows(target, collection, ((k, None) for k in keys), batch, "pending")
        self._upsert(t.units, rows, ("status", "batch", "updated_at"), where=t.units.c.status == "pending")

    def mark_created(self, target: str, collection: int, created: Iterable[tuple[str, int | None]], batch: str) -> None:
        rows = self._unit_rows(target, collection, created, batch, "created")
        self._upsert(t.units, rows, ("status", "unit_id", "updated_at"))

    def clear_pending(self, target: str, collection: int, keys: Iterable[str]) -> None:
        u = t.units.c
        self._delete_each(t.units, sa.and_(u.target == target, u.data_collection == collection, u.status == "pending"),
                          u.dataset_key, keys)

    def index_units(self, target: str, collection: int, units: Iterable[tuple[IndexedUnit, int]]) -> None:
        """Units seen on the server: created (a pending one too: its answer was lost); a known one stays as is.
        What each holds is recorded too, so a later unit with the same key and other content is told apart."""
        units = list(units)
        rows = self._unit_rows(target, collection, ((u.dataset_key, unit_id) for u, unit_id in units), None, "created")
        with self.transaction() as conn:
            self._upsert(t.units, rows, ("status", "unit_id", "updated_at"), where=t.units.c.status == "pending",
                         conn=conn)
            self.record_contents(target, collection, [(u.dataset_key, u.digest) for u, _ in units if u.digest], conn)

    def record_contents(self, target: str, collection: int, digests: Iterable[tuple[str, str]],
                        conn: sa.Connection | None = None) -> None:
        now = time.time()
        rows = [{"target": target, "data_collection": collection, "dataset_key": key, "digest": digest,
                 "updated_at": now} for key, digest in digests]
        self._upsert(t.unit_contents, rows, ("digest", "updated_at"), conn=conn)

    def unit_contents(self, target: str, collection: int, keys: Iterable[str]) -> dict[str, tuple[str | None, int | None, str | None]]:
        """``{key: (digest or None, unit id, batch)}`` of the created units among ``keys``."""
        u, c = t.units.c, t.unit_contents.c
        joined = t.units.outerjoin(t.unit_contents, sa.and_(c.target == u.target, c.data_collection == u.data_collection,
                                                           c.dataset_key == u.dataset_key))
        items = list(keys)
        out = {}
        with self.engine.connect() as conn:
            for start in range(0, len(items), _IN_CHUNK):
                query = sa.select(u.dataset_key, c.digest, u.unit_id, u.batch).select_from(joined).where(
                    u.target == target, u.data_collection == collection, u.status == "created",
                    u.dataset_key.in_(items[start:start + _IN_CHUNK]))
                out.update({key: (digest, unit_id, batch) for key, digest, unit_id, batch in conn.execute(query)})
        return out

    def listing_mark(self, target: str, listing: str) -> tuple[int, int] | None:
        """``(records listed, last id)`` of the key index's last read of ``listing``."""
        m = t.listing_marks.c
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(m.seen, m.last_id).where(m.target == target, m.listing == listing)).first()
        return None if row is None else (row.seen, row.last_id)

    def set_listing_mark(self, target: str, listing: str, mark: tuple[int, int] | None) -> None:
        m = t.listing_marks.c
        with self.transaction() as conn:
            conn.execute(sa.delete(t.listing_marks).where(m.target == target, m.listing == listing))
            if mark is not None:
                conn.execute(sa.insert(t.listing_marks).values(
                    target=target, listing=listing, seen=mark[0], last_id=mark[1], updated_at=time.time()))

    @staticmethod
    def _unit_rows(target: str, collection: int, units: Iterable[tuple[str, int | None]], batch: str | None,
                   status: str) -> list[dict[str, Any]]:
        now = time.time()
        return [{"target": target, "data_collection": collection, "dataset_key": key, "status": status,
                 "unit_id": unit_id, "batch": batch, "updated_at": now} for key, unit_id in units]
