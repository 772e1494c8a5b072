"""The batch-discovery cursor on its own: nothing missed, nothing repeated, bounded work per tick."""

import bisect
import itertools

from synapse_dagster.core.batches.discovery import DiscoveryCursor, DiscoveryLimits, discover


class FolderStore:
    """Sorted batch names with a readiness flag; counts names listed, like an S3 StartAfter listing."""

    def __init__(self) -> None:
        self.ready: dict[str, bool] = {}
        self.listed = 0

    def add(self, name: str, ready: bool = True) -> None:
        self.ready[name] = ready

    def names(self, start_after):
        ordered = sorted(self.ready)
        for name in ordered[bisect.bisect_right(ordered, start_after) if start_after else 0:]:
            self.listed += 1
            yield name

    def readiness(self, name):
        return (True, "") if self.ready.get(name) else (False, "no _READY marker yet")


def run_ticks(store, registered, cursor, limits, ticks=1):
    taken = []
    for _ in range(ticks):
        outcome = discover(store, registered.__contains__, cursor, limits)
        registered.update(outcome.taken)
        taken += outcome.taken
        cursor = outcome.cursor
    return taken, cursor, outcome


def test_backlog_is_taken_in_capped_ticks_without_repeats():
    store, registered = FolderStore(), set()
    for h in range(25):
        store.add(f"2026-11-24T{h:02d}")
    limits = DiscoveryLimits(max_batches_per_tick=10)
    taken, cursor, outcome = run_ticks(store, registered, DiscoveryCursor(), limits, ticks=4)
    assert taken == sorted(store.ready) and len(set(taken)) == 25
    assert outcome.taken == [] and cursor.first_pass_done


def test_a_batch_waits_for_its_marker_then_is_taken_once():
    store, registered = FolderStore(), set()
    store.add("b1")
    store.add("b2", ready=False)
    taken, cursor, outcome = run_ticks(store, registered, DiscoveryCursor(), DiscoveryLimits())
    assert taken == ["b1"] and outcome.waiting == {"b2": "no _READY marker yet"} and cursor.pending == ["b2"]
    store.add("b2", ready=True)
    store.add("b3")
    taken, cursor, _ = run_ticks(store, registered, cursor, DiscoveryLimits(), ticks=3)
    assert taken == ["b2", "b3"] and cursor.pending == []


def test_deleted_or_rewritten_cursor_batch_hides_nothing():
    store, registered = FolderStore(), set()
    for name in ["b1", "b2", "b3"]:
        store.add(name)
    _, cursor, _ = run_ticks(store, registered, DiscoveryCursor(), DiscoveryLimits())
    assert cursor.after == "b3"
    del store.ready["b3"]  # the batch the cursor points at is deleted (dagster-aws raises here)
    store.add("b4")
    store.add("b5")
    taken, cursor, _ = run_ticks(store, registered, cursor, DiscoveryLimits())
    assert taken == ["b4", "b5"]
    store.add("b5")  # rewritten in place: still one partition, no second run
    taken, _, _ = run_ticks(store, registered, cursor, DiscoveryLimits(), ticks=2)
    assert taken == []


def test_late_batches_are_found_by_look_back_and_by_the_rolling_rescan():
    store, registered = FolderStore(), set()
    for d in range(1, 31):
        store.add(f"2026-11-{d:02d}")
    limits = DiscoveryLimits(max_batches_per_tick=100, lookback=5, full_rescan_every_ticks=4)
    _, cursor, _ = run_ticks(store, registered, DiscoveryCursor(), limits)
    store.add("2026-11-28a")  # sorts among the newest batches: the look-back sees it next tick
    taken, cursor, _ = run_ticks(store, registered, cursor, limits)
    assert taken == ["2026-11-28a"]
    store.add("2026-11-02a")  # far behind the floor: the rolling rescan finds it within a rescan period
    taken, cursor, _ = run_ticks(store, registered, cursor, limits, ticks=4)
    assert taken == ["2026-11-02a"]


def test_lost_cursor_repeats_nothing_and_unusable_names_are_reported():
    store, registered = FolderStore(), set()
    for name in ["b1", "b2", "bad name"]:
        store.add(name)
    taken, _, outcome = run_ticks(store, registered, DiscoveryCursor(), DiscoveryLimits())
    assert taken == ["b1", "b2"] and "letters, digits" in outcome.unusable["bad name"]
    taken, _, _ = run_ticks(store, registered, DiscoveryCursor.from_json("garbage{"), DiscoveryLimits())
    assert taken == []


def test_steady_state_ticks_list_only_what_is_new():
    store, registered = FolderStore(), set()
    for i in range(5000):
        store.add(f"b{i:06d}")
    limits = DiscoveryLimits(max_batches_per_tick=10_000, max_names_per_tick=10_000, lookback=20,
                             max_readiness_checks_per_tick=10_000, full_rescan_every_ticks=1000)
    _, cursor, _ = run_ticks(store, registered, DiscoveryCursor(), limits)
    store.listed = 0
    for i in itertools.count(5000):
        store.add(f"b{i:06d}")
        if i == 5004:
            break
    taken, cursor, _ = run_ticks(store, registered, cursor, limits)
    assert len(taken) == 5 and store.listed <= 5 + 20 + 1  # the new names plus the look-back, not 5000


def test_cursor_round_trips_as_json():
    cursor = DiscoveryCursor(after="b9", pending=["b7"], recent=["b8", "b9"], ticks=3)
    assert DiscoveryCursor.from_json(cursor.to_json()) == cursor
