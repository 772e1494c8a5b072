"""Batches of a flat prefix by arrival window: every object whose modification time falls in one hour (or
day, or N minutes) is one batch, keyed by the window (``2026-11-24T10``).

A flat prefix has no sortable batch folders, so finding what is new means listing it. The scan is
paged across ticks (S3/GCS resume after a key), and each completed scan yields a signature per
window: the object count and an order-independent digest of (key, size, ETag). A window is due once
it has closed and settled, and again whenever its signature changes: an object that lands late in
an already ingested window, or is rewritten, re-runs that window (runs are idempotent, so that costs
only the new files). Nothing compares a cursor timestamp, so objects sharing a second are never
dropped.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

from synapse_dagster.core.sources.files import SourceFile

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_SPEC = re.compile(r"^(hourly|daily|(\d+)m)$")
CURSOR_VERSION = 1
DIGEST_MOD = 2**64


@dataclass(frozen=True)
class WindowSpec:
    minutes: int

    @classmethod
    def parse(cls, text: str) -> WindowSpec:
        match = _SPEC.match(text)
        if not match:
            raise ValueError("must be 'hourly', 'daily' or '<N>m' (minutes), e.g. '15m'")
        minutes = {"hourly": 60, "daily": 1440}.get(text) or int(match.group(2))
        if minutes < 1 or 1440 % minutes and minutes % 1440:
            raise ValueError("minutes must divide a day (or be whole days)")
        return cls(minutes)

    def key(self, mtime_ns: int) -> str:
        start = _EPOCH + dt.timedelta(minutes=(mtime_ns // 60_000_000_000) // self.minutes * self.minutes)
        if self.minutes % 1440 == 0:
            return start.strftime("%Y-%m-%d")
        if self.minutes % 60 == 0:
            return start.strftime("%Y-%m-%dT%H")
        return start.strftime("%Y-%m-%dT%H-%M")

    def bounds(self, key: str) -> tuple[int, int]:
        """``[start, end)`` in epoch nanoseconds; ``ValueError`` for a key this spec never makes."""
        for pattern in ("%Y-%m-%dT%H-%M", "%Y-%m-%dT%H", "%Y-%m-%d"):
            try:
                start = dt.datetime.strptime(key, pattern).replace(tzinfo=dt.UTC)
                break
            except ValueError:
                continue
        else:
            raise ValueError(f"batch '{key}' is not an arrival window (expected e.g. 2026-11-24T10)")
        if self.key(_ns(start)) != key:
            raise ValueError(f"batch '{key}' does not start a {self.minutes}-minute window")
        start_ns = _ns(start)
        return start_ns, start_ns + self.minutes * 60_000_000_000

    def contains(self, key: str, mtime_ns: int) -> bool:
        start, end = self.bounds(key)
        return start <= mtime_ns < end


def _ns(moment: dt.datetime) -> int:
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


def object_digest(file: SourceFile) -> int:
    text = f"{file.relative_path}\0{file.size}\0{file.etag or file.mtime_ns}".encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big")


@dataclass
class WindowCursor:
    scan_after: str | None = None  # resume point of the scan in progress (S3/GCS)
    scan_started: float | None = None  # epoch seconds when the scan in progress began
    partial: dict[str, list[int]] = field(default_factory=dict)  # window -> [count, digest] so far
    ran: dict[str, str] = field(default_factory=dict)  # window -> signature already requested
    scans: int = 0  # completed scans: 0 means the first pass is still running

    def to_json(self) -> str:
        return json.dumps({"v": CURSOR_VERSION, **asdict(self)}, separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str | None) -> WindowCursor:
        if not raw:
            return cls()
        try:
            data = json.loads(raw)
            return cls(**{k: v for k, v in data.items() if k != "v"}) if data.get("v") == CURSOR_VERSION else cls()
        except (ValueError, TypeError):
            return cls()


@dataclass
class WindowTick:
    due: list[tuple[str, str]]  # (window, signature) to run now
    cursor: WindowCursor
    scanned: int
    scan_complete: bool
    open_windows: list[str]  # seen, not closed or settled yet


def scan_windows(
    objects: Iterable[SourceFile],
    cursor: WindowCursor,
    spec: WindowSpec,
    *,
    now: float,
    settle_seconds: int,
    max_objects: int | None,
    retention: int = 10_000,
) -> WindowTick:
    """Advance the scan over ``objects`` (key order, already resumed after ``cursor.scan_after``)."""
    partial = {k: list(v) for k, v in cursor.partial.items()}
    started = cursor.scan_started if cursor.scan_after is not None and cursor.scan_started is not None else now
    scan_after, scanned, complete = cursor.scan_after, 0, True
    for file in objects:
        if file.set_aside:
            continue
        if max_objects is not None and scanned >= max_objects:
            complete = False
            break
        window = spec.key(file.mtime_ns)
        entry = partial.setdefault(window, [0, 0])
        entry[0] += 1
        entry[1] = (entry[1] + object_digest(file)) % DIGEST_MOD
        scan_after = file.relative_path
        scanned += 1
    if not complete:
        return WindowTick([], WindowCursor(scan_after, started, partial, dict(cursor.ran), cursor.scans), scanned, False, [])
    ran = dict(cursor.ran)
    due, waiting = [], []
    newest = sorted(partial)[-retention:]
    for window in newest:
        count, digest = partial[window]
        _, end_ns = spec.bounds(window)
        if end_ns / 1e9 + settle_seconds > started:
            waiting.append(window)
            continue
        signature = f"{count}-{digest:016x}"
        if ran.get(window) != signature:
            due.append((window, signature))
            ran[window] = signature
    kept = set(newest)
    ran = {w: s for w, s in ran.items() if w in kept or w >= newest[0]} if newest else ran
    return WindowTick(due, WindowCursor(None, None, {}, ran, cursor.scans + 1), scanned, True, waiting)
