"""The API limiter: a hard cap on concurrent requests, halving on 429, Retry-After honoured, growth back."""

from __future__ import annotations

import threading
import time

import pytest

from synapse_dagster.core.synapse.limiter import AdaptiveLimiter
from synapse_dagster.core.synapse.transport import retry_after_seconds


def hammer(limiter: AdaptiveLimiter, threads: int, each: int, hold: float = 0.002) -> int:
    in_flight, peak, lock = [0], [0], threading.Lock()

    def work() -> None:
        for _ in range(each):
            with limiter.turn():
                with lock:
                    in_flight[0] += 1
                    peak[0] = max(peak[0], in_flight[0])
                time.sleep(hold)
                with lock:
                    in_flight[0] -= 1
            limiter.succeeded()

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return peak[0]


def test_never_more_than_the_cap_in_flight():
    limiter = AdaptiveLimiter(3)
    assert hammer(limiter, threads=12, each=20) == 3
    assert limiter.stats().peak_in_flight == 3


def test_a_429_halves_the_allowance_once_per_window_and_success_grows_it_back():
    limiter = AdaptiveLimiter(8)
    limiter.throttled(0.2)
    limiter.throttled(0.2)  # the same overload: counted once
    assert limiter.stats().limit == 4 and limiter.stats().throttled == 2
    time.sleep(0.25)
    limiter.throttled(0.0)  # a new window
    assert limiter.stats().limit == 2
    assert hammer(limiter, threads=4, each=10) <= 4
    assert limiter.stats().limit > 2  # grown back by successes, never past the cap
    for _ in range(500):
        limiter.succeeded()
    assert limiter.stats().limit == 8


def test_retry_after_pauses_every_new_request():
    limiter = AdaptiveLimiter(4)
    wait = limiter.throttled(0.5)
    assert 0.5 <= wait <= 0.75  # the caller's own wait, with jitter
    started = time.monotonic()
    with limiter.turn():
        pass
    assert time.monotonic() - started >= 0.45


def test_bad_settings_and_retry_after_forms():
    with pytest.raises(ValueError, match="at least 1"):
        AdaptiveLimiter(0)
    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds("-2") == 0.0
    assert retry_after_seconds(None) is None and retry_after_seconds("soon") is None
    assert 0 <= retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # a date in the past: now
