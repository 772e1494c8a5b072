"""A batch's inventory: every file of the batch, plus where each source's batch folder was listed.

The figures the UI shows for it (files, bytes, extensions, a sample) are tallied while the listing streams into
the inventory table, so a million-file batch is not read back once more just to be counted.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from synapse_dagster.core.sources.files import SourceFile

SAMPLE_FILES = 50


@dataclass
class InventoryTally:
    listed: int = 0
    kept: int = 0  # neither refused nor system junk
    bytes: int = 0  # of the kept files
    refused: int = 0
    newest_mtime_ns: int = 0  # of the kept files: how far behind the data a run is (its lag)
    extensions: Counter[str] = field(default_factory=Counter)
    sample: list[SourceFile] = field(default_factory=list)  # the first kept files

    @property
    def excluded(self) -> int:
        return self.listed - self.kept - self.refused

    def counting(self, files: Iterable[SourceFile]) -> Iterator[SourceFile]:
        """``files``, unchanged, counted on their way through."""
        for f in files:
            self.listed += 1
            if f.refused_reason:
                self.refused += 1
            elif not f.excluded_reason:
                self.kept += 1
                self.bytes += f.size
                if f.mtime_ns > self.newest_mtime_ns:
                    self.newest_mtime_ns = f.mtime_ns
                self.extensions[f.extension or "(none)"] += 1
                if len(self.sample) < SAMPLE_FILES:
                    self.sample.append(f)
            yield f

    @classmethod
    def of(cls, files: Iterable[SourceFile]) -> InventoryTally:
        tally = cls()
        for _ in tally.counting(files):
            pass
        return tally


@dataclass(frozen=True)
class Inventory:
    batch: str
    roots: dict[str, str]  # spec (or "*" in single-path mode) -> the folder's URI
    files: Sequence[SourceFile]  # a RowTable when listed by the pipeline
    tally: InventoryTally | None = None

    def counts(self) -> InventoryTally:
        return self.tally if self.tally is not None else InventoryTally.of(self.files)
