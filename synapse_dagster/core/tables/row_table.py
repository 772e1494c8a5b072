"""Long lists of records kept on disk: a batch's inventory, units, plan and issues as SQLite tables.

A million-file batch held as Python objects needs gigabytes, and passing it between steps pickles all of it. A
:class:`RowTable` is a sequence whose rows live in one SQLite file: iterating streams them, ``len`` is free, a
slice or a filter is a query, and pickling it (what the IO manager does between steps) writes only its handle.
SQLite, not Parquet: the tables are written a row at a time while a listing streams, read back in key order,
and filtered by a few columns; SQLite does all three in flat memory (see the README's measurement).
"""

from __future__ import annotations

import itertools
from collections import Counter
import shutil
import sqlite3
import tempfile
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar, overload

T = TypeVar("T")
Row = tuple[Any, ...]
FETCH = 2000  # rows per fetch: enough to amortize the calls, few enough to keep memory flat
FLUSH = 5000  # rows per insert


@dataclass(frozen=True)
class Codec(Generic[T]):
    """How one record type is stored: its columns, and module-level functions between a record and a row of
    plain values (str, int, float, None, bytes). ``texts`` are the columns that may hold names from outside
    (paths, keys): a name that is not valid UTF-8 is stored as its bytes and read back the same."""

    name: str
    columns: tuple[str, ...]
    encode: Callable[[T], Row]
    decode: Callable[[Row], T]
    texts: tuple[int, ...] = ()


class Spill:
    """Where a step writes its tables: a folder, one SQLite file per table.

    A temporary spill (no folder given, as in tests and one-off calls) is deleted once nothing refers to it.
    """

    def __init__(self, folder: str | Path | None = None) -> None:
        if folder is None:
            self.folder = Path(tempfile.mkdtemp(prefix="synapse-tables-"))
            self._cleanup: Any = weakref.finalize(self, shutil.rmtree, self.folder, True)
        else:
            self.folder = Path(folder)
            self.folder.mkdir(parents=True, exist_ok=True)
            self._cleanup = None
        self._names = itertools.count()

    def writer(self, name: str, codec: Codec[T]) -> TableWriter[T]:
        path = self.folder / f"{name}-{next(self._names)}.sqlite"
        return TableWriter(path, codec, keep=self if self._cleanup is not None else None)

    def table(self, name: str, codec: Codec[T], items: Iterable[T]) -> RowTable[T]:
        with self.writer(name, codec) as writer:
            writer.extend(items)
        return writer.table


class TableWriter(Generic[T]):
    """Appends records to a new table; :attr:`table` is the finished, read-only sequence."""

    def __init__(self, path: Path, codec: Codec[T], keep: Any = None) -> None:
        self.path, self.codec, self.keep = path, codec, keep
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("pragma journal_mode=memory")  # a new file: the journal stays small; savepoints work
        self.db.execute("pragma synchronous=off")
        self.db.execute("pragma locking_mode=exclusive")  # one writer, no reader until it closes: a fifth off each insert
        self.db.execute(f"create table rows ({', '.join(codec.columns)})")
        self.db.execute("begin")
        self.pending: list[Row] = []
        self.count = 0
        self.table: RowTable[T] | None = None
        self.escaped = False  # some name was stored as bytes: reading must turn it back
        self._insert = f"insert into rows values ({', '.join('?' * len(codec.columns))})"

    def append(self, item: T) -> None:
        self.pending.append(self.codec.encode(item))
        if len(self.pending) >= FLUSH:
            self._flush()

    def append_row(self, row: Row) -> None:
        """A record already encoded (``codec.encode``'s result), for writers that build rows without records."""
        self.pending.append(row)
        if len(self.pending) >= FLUSH:
            self._flush()

    def extend(self, items: Iterable[T]) -> None:
        """``append`` of each item, encoded a chunk at a time (a listing streams a million of them through here)."""
        items, encode = iter(items), self.codec.encode
        while chunk := list(map(encode, itertools.islice(items, FLUSH - len(self.pending)))):
            self.pending += chunk
            if len(self.pending) >= FLUSH:
                self._flush()

    def _flush(self) -> None:
        self.db.execute("savepoint chunk")
        try:
            self.db.executemany(self._insert, self.pending)
        except UnicodeEncodeError:  # a name that is not UTF-8 (a surrogate escape from the file system)
            self.db.execute("rollback to chunk")  # the rows before the bad one went in already
            self.db.executemany(self._insert, [_storable(row, self.codec.texts) for row in self.pending])
            self.escaped = True
        self.db.execute("release chunk")
        self.count += len(self.pending)
        self.pending.clear()

    def close(self) -> RowTable[T]:
        if self.table is None:
            self._flush()
            self.db.execute("commit")
            self.db.close()
            self.table = RowTable(self.path, self.codec, self.count, keep=self.keep, escaped=self.escaped)
        return self.table

    def __enter__(self) -> TableWriter[T]:
        return self

    def __exit__(self, kind: Any, *rest: Any) -> None:
        if kind is None:
            self.close()
        else:
            self.db.close()


class RowTable(Sequence[T]):
    """A read-only table of records, optionally filtered by a SQL condition over its columns."""

    def __init__(self, path: Path, codec: Codec[T], count: int, where: str = "", params: Row = (),
                 keep: Any = None, escaped: bool = False) -> None:
        self.path, self.codec, self.count, self.where_sql, self.params = Path(path), codec, count, where, params
        self.escaped = escaped
        self._keep = keep  # a temporary spill lives as long as its tables

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_keep"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, _keep=None)
        self.__dict__.setdefault("escaped", True)

    def __len__(self) -> int:
        return self.count

    def __eq__(self, other: object) -> bool:
        """Equal to any sequence of the same records in the same order, as a list would be."""
        if not isinstance(other, (list, tuple, RowTable)):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other))

    __hash__ = None  # type: ignore[assignment]

    def __iter__(self) -> Iterator[T]:
        return self._rows()

    @overload
    def __getitem__(self, index: int) -> T: ...
    @overload
    def __getitem__(self, index: slice) -> list[T]: ...
    def __getitem__(self, index: int | slice) -> T | list[T]:
        if isinstance(index, slice):
            start, stop, step = index.indices(self.count)
            if step != 1:
                return list(itertools.islice(self, start, stop, step))
            return list(self._rows(max(0, stop - start), start))
        position = index + self.count if index < 0 else index
        if not 0 <= position < self.count:
            raise IndexError(f"row {index} of a table of {self.count}")
        return next(self._rows(1, position))

    def where(self, condition: str, params: Row = ()) -> RowTable[T]:
        """The rows that meet ``condition`` (SQL over the codec's columns), as a table of their own."""
        joined = f"({self.where_sql}) and ({condition})" if self.where_sql else condition
        with self._connect() as db:
            (count,) = db.execute(f"select count(*) from rows where {joined}", (*self.params, *params)).fetchone()
        return RowTable(self.path, self.codec, count, joined, (*self.params, *params), keep=self._keep,
                        escaped=self.escaped)

    def ordered(self, by: str) -> Iterator[T]:
        """Every row, in the order of the SQL ``by`` (columns): the sort runs in SQLite, in bounded memory."""
        return self._rows(order=by)

    def drop(self) -> None:
        """Delete the table's file: for tables that only lived to be sorted."""
        self.path.unlink(missing_ok=True)

    def repeated(self, column: str) -> dict[Any, int]:
        """The values of ``column`` that more than one row holds, with their counts."""
        where = f" where {self.where_sql}" if self.where_sql else ""
        with self._connect() as db:
            return dict(db.execute(f"select {column}, count(*) from rows{where} group by {column} having count(*) > 1",
                                   self.params).fetchall())

    def values(self, expression: str) -> Iterator[Any]:
        """One SQL expression per row (a column, a length ...), without decoding the records."""
        where = f" where {self.where_sql}" if self.where_sql else ""
        with self._connect() as db:
            for (value,) in db.execute(f"select {expression} from rows{where} order by rowid", self.params):
                yield value

    def _rows(self, limit: int | None = None, offset: int = 0, order: str = "rowid") -> Iterator[T]:
        """Rows in order; a plain table is read by rowid (1..count, as written), a filtered one by position."""
        where, params = (f" where {self.where_sql}", self.params) if self.where_sql else ("", ())
        if limit is not None and not self.where_sql:
            where, params, limit = " where rowid > ? and rowid <= ?", (offset, offset + limit), None
        page = "" if limit is None else f" limit {limit} offset {offset}"
        decode, texts = self.codec.decode, self.codec.texts if self.escaped else ()
        with self._connect() as db:
            cursor = db.execute(f"select {', '.join(self.codec.columns)} from rows{where} order by {order}{page}", params)
            while batch := cursor.fetchmany(FETCH):
                if texts:
                    yield from (decode(_readable(row, texts)) for row in batch)
                else:
                    yield from map(decode, batch)

    def _connect(self) -> _Reading:
        return _Reading(self.path)

    def __repr__(self) -> str:
        return f"RowTable({self.codec.name}, {self.count} rows at {self.path})"


def matching(items: Sequence[T], keep: Callable[[T], bool], condition: str, params: Row = ()) -> Sequence[T]:
    """The items ``keep`` accepts: a query on a table (``condition`` must say the same in SQL), a filter on a list."""
    if isinstance(items, RowTable):
        return items.where(condition, params)
    return [item for item in items if keep(item)]


def column_counts(items: Sequence[T], column: str, value: Callable[[T], Any]) -> Counter[Any]:
    """How often each value of ``column`` occurs: read from the table without decoding rows, or from a list."""
    if isinstance(items, RowTable):
        return Counter(items.values(column))
    return Counter(value(item) for item in items)


def column_sum(items: Sequence[T], column: str, value: Callable[[T], int]) -> int:
    """The sum of ``column``: read from the table without decoding rows, or from a list."""
    if isinstance(items, RowTable):
        return sum(items.values(column))
    return sum(value(item) for item in items)


class _Reading:
    """A read-only connection, closed on exit (also when a stream is abandoned half way)."""

    def __init__(self, path: Path) -> None:
        if not path.exists():
            raise FileNotFoundError(f"the batch table {path} is gone (cleaned up?); materialize its asset again")
        self.db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)

    def __enter__(self) -> sqlite3.Connection:
        return self.db

    def __exit__(self, *exc: Any) -> None:
        self.db.close()


def _storable(row: Row, texts: tuple[int, ...]) -> Row:
    return tuple(_escaped(v) if i in texts and isinstance(v, str) else v for i, v in enumerate(row))


def _escaped(text: str) -> str | bytes:
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape")


def _readable(row: Row, texts: tuple[int, ...]) -> Row:
    if not any(isinstance(row[i], bytes) for i in texts):
        return row
    return tuple(v.decode("utf-8", "surrogateescape") if i in texts and isinstance(v, bytes) else v
                 for i, v in enumerate(row))
