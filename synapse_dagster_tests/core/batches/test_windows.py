"""Arrival windows for flat prefixes: keys, closing and settling, late objects, paged scans."""

import datetime as dt

import pytest

from synapse_dagster.core.batches.windows import WindowCursor, WindowSpec, scan_windows
from synapse_dagster.core.sources.files import SourceFile


def at(text: str) -> int:
    moment = dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)
    return int(moment.timestamp()) * 1_000_000_000


def obj(name: str, when: str, size: int = 1) -> SourceFile:
    return SourceFile(f"s3://b/in/{name}", name, size, at(when), etag=f"e-{name}-{size}")


NOW = at("2026-11-24T12:30:00") / 1e9


def test_window_keys_and_bounds():
    hourly, daily, quarter = WindowSpec.parse("hourly"), WindowSpec.parse("daily"), WindowSpec.parse("15m")
    assert hourly.key(at("2026-11-24T10:59:59")) == "2026-11-24T10" and daily.key(at("2026-11-24T10:00:00")) == "2026-11-24"
    assert quarter.key(at("2026-11-24T10:44:00")) == "2026-11-24T10-30"
    assert hourly.bounds("2026-11-24T10") == (at("2026-11-24T10:00:00"), at("2026-11-24T11:00:00"))
    with pytest.raises(ValueError, match="does not start a 15-minute window"):
        quarter.bounds("2026-11-24T10-20")
    with pytest.raises(ValueError):
        WindowSpec.parse("weekly")


def test_closed_windows_run_once_open_ones_wait_and_late_objects_rerun():
    spec = WindowSpec.parse("hourly")
    objects = [obj("a.png", "2026-11-24T10:00:00"), obj("b.png", "2026-11-24T10:00:00"),  # the same second
               obj("c.png", "2026-11-24T11:59:00"), obj("d.png", "2026-11-24T12:10:00")]
    tick = scan_windows(objects, WindowCursor(), spec, now=NOW, settle_seconds=600, max_objects=None)
    assert [w for w, _ in tick.due] == ["2026-11-24T10", "2026-11-24T11"] and tick.open_windows == ["2026-11-24T12"]
    assert tick.due[0][1].startswith("2-")  # both same-second objects counted
    again = scan_windows(objects, tick.cursor, spec, now=NOW + 60, settle_seconds=600, max_objects=None)
    assert again.due == []  # nothing repeated
    late = objects + [obj("late.png", "2026-11-24T10:20:00")]  # visible late, stamped inside a done window
    third = scan_windows(late, again.cursor, spec, now=NOW + 120, settle_seconds=600, max_objects=None)
    assert [w for w, _ in third.due] == ["2026-11-24T10"] and third.due[0][1].startswith("3-")
    rewritten = [obj("a.png", "2026-11-24T10:00:00", size=2)] + late[1:]
    fourth = scan_windows(rewritten, third.cursor, spec, now=NOW + 180, settle_seconds=600, max_objects=None)
    assert [w for w, _ in fourth.due] == ["2026-11-24T10"]


def test_scans_page_across_ticks_and_decide_only_when_complete():
    spec = WindowSpec.parse("hourly")
    objects = [obj(f"f{i:03d}.png", f"2026-11-24T0{i % 3}:00:00") for i in range(10)]
    cursor, ticks, due = WindowCursor(), 0, []
    while True:
        remaining = [o for o in objects if cursor.scan_after is None or o.relative_path > cursor.scan_after]
        tick = scan_windows(remaining, cursor, spec, now=NOW, settle_seconds=0, max_objects=4)
        cursor, ticks = tick.cursor, ticks + 1
        due += tick.due
        if tick.scan_complete:
            break
        assert tick.due == []
    assert ticks == 3 and sorted(w for w, _ in due) == ["2026-11-24T00", "2026-11-24T01", "2026-11-24T02"]
    assert sum(int(sig.split("-")[0]) for _, sig in due) == 10 and cursor.scans == 1
