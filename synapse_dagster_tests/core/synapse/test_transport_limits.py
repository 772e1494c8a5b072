"""The throttled transport against the sandbox, through the real BackendClient: concurrency capped per process,
429 answered by a pause of every thread, not by a storm of resends."""

from __future__ import annotations

import threading
import time

from synapse_dagster.core.synapse import limiter as limiters
from synapse_dagster.core.synapse.limiter import limiter_for
from synapse_dagster.core.synapse.transport import guard_creates

SLOW_READS = {"match": {"method": "GET", "path": "^data_collections/"}, "action": "latency", "latency_ms": 150}


def read_in_threads(client, collection: int, threads: int, each: int) -> list[Exception]:
    errors: list[Exception] = []

    def work() -> None:
        for _ in range(each):
            try:
                client.get_data_collection(collection)
            except Exception as exc:  # counted and asserted on
                errors.append(exc)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return errors


def api_peak(sandbox) -> int:
    return sandbox.stats()["concurrency"]["api_peak"]


def test_a_process_never_sends_more_than_its_limit(sandbox, collection):
    sandbox.set_faults([SLOW_READS])
    try:
        sandbox.admin("GET", "stats?reset_peak=1")
        assert read_in_threads(sandbox.client(), collection, threads=8, each=2) == []
        unguarded = api_peak(sandbox)  # the baseline: the SDK alone sends all eight at once
        sandbox.admin("GET", "stats?reset_peak=1")
        assert read_in_threads(guard_creates(sandbox.client(), max_concurrency=3), collection, threads=8, each=2) == []
        guarded = api_peak(sandbox)
    finally:
        sandbox.set_faults([])
    assert unguarded >= 6 and guarded == 3, (unguarded, guarded)


def test_a_429_pauses_every_thread_for_retry_after(sandbox, collection):
    limiters._limiters.pop(sandbox.url, None)  # a limiter of its own: no other test's 429s in its numbers
    client = guard_creates(sandbox.client(), max_concurrency=4)
    limiter = limiter_for(client.base_url, 4)
    before = limiter.stats()
    sandbox.set_faults([{"match": {"method": "GET", "path": "^data_collections/"}, "action": "rate_limit",
                         "retry_after": 1, "times": 1}, SLOW_READS])
    try:
        seen_before = sandbox.stats()["requests"].get("GET data_collections/<int:pk>/", 0)
        started = time.monotonic()
        assert read_in_threads(client, collection, threads=4, each=2) == []
        elapsed = time.monotonic() - started
        sent = sandbox.stats()["requests"].get("GET data_collections/<int:pk>/", 0) - seen_before
    finally:
        sandbox.set_faults([])
    assert limiter.stats().throttled - before.throttled == 1
    assert sent == 4 * 2 + 1  # the refused request sent once more, nothing else resent
    assert elapsed >= 1.0  # Retry-After was honoured
    assert before.lowest_limit == 4 and limiter.stats().lowest_limit == 2  # halved once; it grows back with successes
