"""Answers that repeat from unit to unit of a batch ('scan.png' in every folder), remembered up to a bound so that
a batch of unique names stays in flat memory."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class BoundedMemo(Generic[K, V]):
    """``make(key)``, remembered for the first ``size`` keys asked."""

    def __init__(self, make: Callable[[K], V], size: int = 4096) -> None:
        self.make, self.size = make, size
        self.known: dict[K, V] = {}

    def __call__(self, key: K) -> V:
        found = self.known.get(key)
        if found is None:
            found = self.make(key)
            if len(self.known) < self.size:
                self.known[key] = found
        return found
