"""Progress one can watch on a long upload: files, bytes, rate and ETA, at intervals rather than per file.

A million-file batch that logged every slice would write thousands of lines into the run's event log (each one a
stored Dagster event); one line about every ``every_s`` seconds, and one at the end, is what a person reads.
Listeners in this process (a terminal's bar, see :mod:`synapse_dagster.core.watchers`) hear every slice, as
numbers.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from synapse_dagster.core.sizes import human_bytes
from synapse_dagster.core.watchers import Sending, publish


@dataclass
class Progress:
    files: int  # to send in this run
    bytes: int
    every_s: float = 10.0
    clock: Callable[[], float] = time.monotonic
    started: float = field(default=0.0, init=False)
    _last: float = field(default=0.0, init=False)
    files_done: int = field(default=0, init=False)
    bytes_done: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self.started = self._last = self.clock()
        self._publish()  # the totals, before the first slice: a bar can show 0 of N at once

    def advance(self, files: int, nbytes: int) -> str | None:
        """Count a finished slice; returns a line to log when ``every_s`` passed since the last one, or at the end."""
        self.files_done, self.bytes_done = self.files_done + files, self.bytes_done + nbytes
        self._publish()
        now = self.clock()
        if now - self._last < self.every_s and self.files_done < self.files:
            return None
        self._last = now
        return self.line(now)

    def _publish(self) -> None:
        publish(Sending(self.files_done, self.bytes_done, self.files, self.bytes))

    def line(self, now: float | None = None) -> str:
        elapsed = max((now if now is not None else self.clock()) - self.started, 1e-9)
        rate, byte_rate = self.files_done / elapsed, self.bytes_done / elapsed
        left = (self.files - self.files_done) / rate if rate > 0 and self.files_done < self.files else 0.0
        return (f"uploaded {self.files_done:,}/{self.files:,} files, {human_bytes(self.bytes_done)} of "
                f"{human_bytes(self.bytes)} ({rate:,.1f} files/s, {human_bytes(byte_rate)}/s)"
                + (f", about {_duration(left)} left" if left else ""))


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
