"""What a server listing holds (a collection's units, a project's tasks), at a cost that scales with what is new.

The v1 API has no filter on ``meta``, so finding a chunk's units by ``dataset_key`` means listing the collection,
and finding a unit's task means listing the project. Instead the ledger keeps a key index per listing: the first
reconciliation reads the listing once and records every key with its record's id, and a *listing mark* (how
many records were listed, the last id). Later reconciliations read only the tail: the sandbox, and a Django
backend by default, list records in ascending id order, so records created since the mark are on the pages from
the mark onwards. One page before the mark is re-read, for a record whose id was taken before the mark but
committed after it. Any sign that the order is not by ascending id (ids going down, the mark's record not found
within a few pages back) falls back to a full read, so a server that orders differently costs what it did
before, never a missed record. Pages are handed to ``record`` one at a time: memory stays one page.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from synapse_dagster.core.deliver.ledger import Ledger

PAGE_SIZE = 500
MAX_PAGES_BACK = 4  # deleted units move the mark's unit to earlier pages; beyond this, list everything


PageReader = Callable[[int, int], Any]  # (page number, page size) -> the raw page, as the SDK returns it
KeyOf = Callable[[Mapping[str, Any]], "tuple[Any, int] | None"]  # a record -> (its key, its id), or None


@dataclass(frozen=True)
class ListingMark:
    seen: int  # units listed up to and including ``last_id``
    last_id: int


Record = Callable[[list[tuple[Any, int]]], None]  # called with each page's (key, id) pairs


@dataclass
class Listing:
    """What one reconciliation read (the units themselves went to ``record``, a page at a time)."""

    record: Record
    key_of: KeyOf
    mark: ListingMark | None = None
    full: bool = True
    pages: int = 0
    units: int = 0

    def take(self, results: list[Mapping[str, Any]]) -> None:
        self.record([pair for pair in map(self.key_of, results) if pair is not None])
        self.units += len(results)


def read_new(read_page: PageReader, mark: ListingMark | None, record: Record, key_of: KeyOf,
             page_size: int = PAGE_SIZE) -> Listing:
    """The records since ``mark`` (all of them without one, or when the server's order cannot be trusted).

    A tail that turns out unusable midway may have recorded some pages already; recording is idempotent, and
    the full listing that follows records them again.
    """
    listing = Listing(record, key_of, full=False)
    if mark is not None and _tail(read_page, mark, listing, page_size):
        return listing
    listing.full = True
    return _full(read_page, listing, page_size)


def task_key(task: Mapping[str, Any]) -> tuple[int, int] | None:
    unit = task.get("data_unit")
    return (int(unit), task["id"]) if isinstance(unit, int) and isinstance(task.get("id"), int) else None


def _page(read_page: PageReader, number: int, size: int) -> Mapping[str, Any]:
    try:
        found = read_page(number, size)
    except Exception as exc:  # a page past the end is a 404 ("Invalid page.") in DRF
        if getattr(exc, "status_code", None) == 404:
            return {"count": None, "results": [], "next": None}
        raise
    return found if isinstance(found, Mapping) else {"results": list(found or []), "next": None}


def _tail(read_page: PageReader, mark: ListingMark, listing: Listing, size: int) -> bool:
    start = max(1, math.ceil(mark.seen / size) - 1)  # one page before the mark's own page
    for number in range(start, max(0, start - MAX_PAGES_BACK), -1):
        first = _page(read_page, number, size)
        listing.pages += 1
        ids = [u.get("id") for u in first.get("results") or []]
        if not _ascending(ids):
            return False
        if ids and ids[0] <= mark.last_id:
            return _read_on(read_page, number, first, listing, size)
    return False


def _read_on(read_page: PageReader, number: int, page: Mapping[str, Any], listing: Listing, size: int) -> bool:
    seen, last = (number - 1) * size, 0
    while True:
        results = page.get("results") or []
        ids = [u.get("id") for u in results]
        if not _ascending(ids) or (ids and ids[0] <= last):
            return False
        listing.take(results)
        seen += len(results)
        last = ids[-1] if ids else last
        if not page.get("next") or not results:
            break
        number += 1
        page = _page(read_page, number, size)
        listing.pages += 1
    listing.mark = ListingMark(seen, last) if last else None
    return listing.mark is not None


def _full(read_page: PageReader, listing: Listing, size: int) -> Listing:
    number, seen, last, ordered = 1, 0, 0, True
    while True:
        page = _page(read_page, number, size)
        listing.pages += 1
        results = page.get("results") or []
        ids = [u.get("id") for u in results]
        ordered = ordered and _ascending(ids) and (not ids or ids[0] > last)
        listing.take(results)
        seen += len(results)
        last = max([last, *(i for i in ids if isinstance(i, int))])
        if not page.get("next") or not results:
            break
        number += 1
    listing.mark = ListingMark(seen, last) if ordered and last else None
    return listing


def _ascending(ids: list[Any]) -> bool:
    return all(isinstance(i, int) for i in ids) and all(a < b for a, b in zip(ids, ids[1:]))


def read_new_records(ledger: Ledger, target: str, listing: str, read_page: PageReader, record: Record,
                     key_of: KeyOf) -> Listing:
    """:func:`read_new` from the ledger's mark for ``listing``, leaving the new mark there."""
    known = ledger.listing_mark(target, listing)
    found = read_new(read_page, None if known is None else ListingMark(*known), record, key_of)
    ledger.set_listing_mark(target, listing, None if found.mark is None else (found.mark.seen, found.mark.last_id))
    return found
