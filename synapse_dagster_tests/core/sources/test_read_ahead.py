"""read_ahead: the pages of any iterator, in order, one fetched ahead in a background thread."""

from __future__ import annotations

import threading

import pytest

from synapse_dagster.core.sources.store import read_ahead
from synapse_dagster_tests.core.sources.trees import settled


def counted_pages(n: int, fail_at: int | None = None, taken: list[int] | None = None):
    for i in range(n):
        if i == fail_at:
            raise ConnectionError(f"page {i} failed")
        if taken is not None:
            taken.append(i)
        yield [i] * 3


def test_pages_come_in_order_and_all():
    assert list(read_ahead(counted_pages(50))) == [[i] * 3 for i in range(50)]
    assert list(read_ahead(iter([]))) == []


def test_one_page_ahead_at_most():
    taken: list[int] = []
    stream = read_ahead(counted_pages(10, taken=taken))
    assert next(stream) == [0, 0, 0]
    assert settled(taken, 2) == [0, 1]  # page 1 fetched while page 0 is worked on, page 2 not yet
    next(stream)
    assert settled(taken, 3) == [0, 1, 2]
    stream.close()
    assert not [t for t in threading.enumerate() if t.name.startswith("read-ahead")]


def test_a_failure_is_raised_in_the_callers_thread_after_the_pages_before_it():
    got = []
    with pytest.raises(ConnectionError, match="page 3 failed"):
        for page in read_ahead(counted_pages(10, fail_at=3)):
            got.append(page[0])
    assert got == [0, 1, 2]
