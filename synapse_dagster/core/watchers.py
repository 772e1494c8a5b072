"""Who watches a run in this process: listeners that hear its progress as plain numbers, many times a second.

The run log gets a sentence about every 10 s (:mod:`.deliver.progress`, :mod:`.sources.listing_progress`); a
person at a terminal wants a bar that moves. The core publishes structured events here and knows nothing of who
listens; the CLI subscribes while its in-process run goes (the run's steps run in the CLI's own process). With no
listener, publishing is a loop over an empty tuple. Events carry counts and a source's display name only, never
a file's path or a secret.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class Listing:
    """A source's listing so far (``done`` once it ended); ``source`` is fit to show (see sources.location.shown)."""

    source: str
    files: int
    bytes: int
    done: bool = False


@dataclass(frozen=True)
class Sending:
    """A delivery's upload so far: files settled (landed, failed or held back) and bytes landed, of the totals."""

    files_done: int
    bytes_done: int
    files: int
    bytes: int


Event = Listing | Sending
Listener = Callable[[Event], None]

_listeners: tuple[Listener, ...] = ()  # replaced, never mutated: publish reads it without the lock
_lock = threading.Lock()


@contextmanager
def listening(listener: Listener) -> Iterator[None]:
    """Let ``listener`` hear every event published in this process until the block ends."""
    global _listeners
    with _lock:
        _listeners = (*_listeners, listener)
    try:
        yield
    finally:
        with _lock:
            index = _listeners.index(listener)
            _listeners = _listeners[:index] + _listeners[index + 1:]


def publish(event: Event) -> None:
    for listener in _listeners:
        listener(event)
