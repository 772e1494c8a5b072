"""A long listing that says how far it got: "listed N files (X) so far from <source>", at intervals.

Listing a prefix of a million objects takes minutes, and until it ends the run showed nothing. This counts files
and bytes as they stream past (two integers: nothing per file is kept) and returns a line for the run log about
every ``every_s`` seconds, never per file; listeners in this process (a terminal's bar, see
:mod:`synapse_dagster.core.watchers`) hear the counts every ``tick_s``. The source is named by its display name,
which the caller scrubs of secrets (``location.shown``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from synapse_dagster.core.sizes import human_bytes
from synapse_dagster.core.sources.files import SourceFile
from synapse_dagster.core.watchers import Listing, publish


@dataclass
class ListingProgress:
    source: str  # fit to show: no credentials
    every_s: float = 10.0  # between lines for the run log
    tick_s: float = 0.25  # between events for listeners
    clock: Callable[[], float] = time.monotonic
    files: int = field(default=0, init=False)
    bytes: int = field(default=0, init=False)
    spoke: bool = field(default=False, init=False)  # a line went out: the listing was long enough to say its end
    started: float = field(default=0.0, init=False)
    _logged: float = field(default=0.0, init=False)
    _ticked: float = field(default=0.0, init=False)

    def __post_init__(self) -> None:
        self.started = self._logged = self._ticked = self.clock()
        publish(Listing(self.source, 0, 0))

    def advance(self, nbytes: int) -> str | None:
        """Count one listed file; returns a line to log when ``every_s`` passed since the start or the last line."""
        self.files, self.bytes = self.files + 1, self.bytes + nbytes
        now = self.clock()
        if now - self._ticked >= self.tick_s:
            self._ticked = now
            publish(Listing(self.source, self.files, self.bytes))
        if now - self._logged < self.every_s:
            return None
        self._logged, self.spoke = now, True
        return f"listed {self.files:,} files ({human_bytes(self.bytes)}) so far from {self.source}"

    def counting(self, files: Iterable[SourceFile],
                 on_line: Callable[[str], None] | None = None) -> Iterator[SourceFile]:
        """``files``, unchanged, counted on their way through; the lines go to ``on_line``."""
        for file in files:
            line = self.advance(file.size)
            if line and on_line is not None:
                on_line(line)
            yield file
        line = self.finish()
        if line and on_line is not None:
            on_line(line)

    def finish(self) -> str | None:
        """The listing ended: listeners hear the totals; the log gets a last line only if it had heard of this
        listing before (a short one is told by the inventory's own metadata)."""
        publish(Listing(self.source, self.files, self.bytes, done=True))
        if not self.spoke:
            return None
        seconds = self.clock() - self.started
        return f"listed {self.files:,} files ({human_bytes(self.bytes)}) from {self.source} in {seconds:,.0f} s"

