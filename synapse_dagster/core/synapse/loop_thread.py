"""An asyncio event loop on a thread of its own, for callers that are plain threads.

The uploader's PUTs share one ``aiohttp`` session, and a session belongs to one loop; the rounds that use it run
on several threads at once, so the loop lives on its own thread and each round hands it a coroutine to run.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class LoopThread:
    """Started on first use; :meth:`close` runs ``on_close`` on the loop (to close sessions), then stops it. The
    thread is a daemon, so a killed or interrupted run never waits for it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run ``coroutine`` on the loop and wait for its result (its exception is raised here)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                self._thread = threading.Thread(target=self._loop.run_forever, name=self.name, daemon=True)
                self._thread.start()
            return self._loop

    @property
    def started(self) -> bool:
        return self._loop is not None

    def close(self, on_close: Coroutine[Any, Any, Any] | None = None) -> None:
        with self._lock:
            loop, thread, self._loop, self._thread = self._loop, self._thread, None, None
        if loop is None or thread is None:
            if on_close is not None:
                on_close.close()
            return
        try:
            if on_close is not None:
                asyncio.run_coroutine_threadsafe(on_close, loop).result()
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join()
            loop.close()
