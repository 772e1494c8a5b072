"""How many requests this process sends to one Synapse API at once: at most a configured number, fewer while the
server says 429.

AIMD, as TCP does it: every 429 halves the allowed concurrency (once per ``Retry-After`` window, so a burst of
429s from one overload counts once) and holds every new request until ``Retry-After`` has passed; each success
adds ``1/limit``, so the allowance grows back by about one per round of requests. The cap never moves, so the API
never sees more than ``max_concurrency`` requests from this process; across processes the Dagster pool bounds the
number of delivering steps, so a deployment sends at most pool slots x ``max_concurrency``.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

DEFAULT_MAX_CONCURRENCY = 8
MAX_PAUSE_SECONDS = 60.0


@dataclass
class LimiterStats:
    limit: float
    lowest_limit: float  # how far 429s pushed the allowance down
    peak_in_flight: int
    throttled: int  # 429 answers seen
    waited_s: float  # time requests spent waiting for a turn


class AdaptiveLimiter:
    def __init__(self, max_concurrency: int = DEFAULT_MAX_CONCURRENCY) -> None:
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be at least 1, not {max_concurrency}")
        self.max_concurrency = max_concurrency
        self._limit = float(max_concurrency)
        self._lowest = self._limit
        self._in_flight = 0
        self._peak = 0
        self._throttled = 0
        self._waited = 0.0
        self._paused_until = 0.0
        self._last_decrease = 0.0
        self._cond = threading.Condition()

    @contextlib.contextmanager
    def turn(self) -> Iterator[None]:
        """Hold one of the allowed concurrent requests for the ``with`` block; waiting sleeps on a condition."""
        self._acquire()
        try:
            yield
        finally:
            with self._cond:
                self._in_flight -= 1
                self._cond.notify_all()

    def _acquire(self) -> None:
        started = time.monotonic()
        with self._cond:
            while True:
                pause = self._paused_until - time.monotonic()
                if pause <= 0 and self._in_flight < max(1, int(self._limit)):
                    break
                self._cond.wait(timeout=pause if pause > 0 else None)
            self._in_flight += 1
            self._peak = max(self._peak, self._in_flight)
            self._waited += time.monotonic() - started

    def succeeded(self) -> None:
        with self._cond:
            self._limit = min(float(self.max_concurrency), self._limit + 1.0 / self._limit)
            self._cond.notify_all()

    def throttled(self, retry_after: float | None) -> float:
        """A 429: halve the allowance, pause new requests; returns how long the caller should wait (with jitter)."""
        now = time.monotonic()
        wait = min(MAX_PAUSE_SECONDS, retry_after if retry_after is not None else 1.0)
        with self._cond:
            self._throttled += 1
            if now - self._last_decrease >= max(wait, 0.1):
                self._limit = max(1.0, self._limit / 2)
                self._lowest = min(self._lowest, self._limit)
                self._last_decrease = now
            self._paused_until = max(self._paused_until, now + wait)
        return wait + random.uniform(0, min(1.0, wait / 2))

    def stats(self) -> LimiterStats:
        with self._cond:
            return LimiterStats(self._limit, self._lowest, self._peak, self._throttled, self._waited)


_limiters: dict[str, AdaptiveLimiter] = {}
_registry_lock = threading.Lock()


def limiter_for(base_url: str, max_concurrency: int = DEFAULT_MAX_CONCURRENCY) -> AdaptiveLimiter:
    """One limiter per API per process, shared by every client and step thread that talks to it."""
    with _registry_lock:
        found = _limiters.get(base_url)
        if found is None or found.max_concurrency != max_concurrency:
            found = _limiters[base_url] = AdaptiveLimiter(max_concurrency)
        return found
