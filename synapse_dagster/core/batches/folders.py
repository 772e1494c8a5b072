"""Batch folders of a source, as a sensor sees them: their names, and whether each is complete.

Use :class:`FolderBatches` as a context manager: one connection per source serves the whole tick (opening an
S3 client costs more than listing one small folder).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence

from synapse_dagster.core.batches.keys import check_batch_key
from synapse_dagster.core.sources.files import SourceError
from synapse_dagster.core.sources.listing import list_files, list_subfolders, open_store
from synapse_dagster.core.sources.roots import SourceRoot
from synapse_dagster.core.sources.store import Store


def list_existing_batches(roots: Sequence[SourceRoot]) -> list[str]:
    """Batch folders present in every source, sorted; names that cannot be batch keys are left out."""
    found: set[str] | None = None
    for root in roots:
        names = set(list_subfolders(root.location, root.options))
        found = names if found is None else found & names
    valid = []
    for name in sorted(found or ()):
        try:
            valid.append(check_batch_key(name))
        except ValueError:
            continue
    return valid


class FolderBatches:
    """Batch names after a position, and readiness: a ``ready_marker`` file, or files settled for
    ``settle_seconds`` (both: the marker, then the files settle)."""

    def __init__(self, roots: Sequence[SourceRoot], *, ready_marker: str | None, settle_seconds: int,
                 clock: Callable[[], float] = time.time) -> None:
        self.roots, self.ready_marker, self.settle_seconds, self.clock = list(roots), ready_marker, settle_seconds, clock
        self._stores: dict[int, Store] = {}
        self._exit = contextlib.ExitStack()

    def __enter__(self) -> FolderBatches:
        for index, root in enumerate(self.roots):
            self._stores[index] = self._exit.enter_context(open_store(root.location, root.options))
        return self

    def __exit__(self, *exc: object) -> None:
        self._exit.close()
        self._stores.clear()

    def names(self, start_after: str | None) -> Iterator[str]:
        first = self.roots[0]
        yield from list_subfolders(first.location, first.options, start_after=start_after, store=self._stores.get(0))

    def readiness(self, name: str) -> tuple[bool, str]:
        for index, root in enumerate(self.roots):
            ready, why = self._folder_readiness(index, root, name)
            if not ready:
                return False, why
        return True, ""

    def _folder_readiness(self, index: int, root: SourceRoot, name: str) -> tuple[bool, str]:
        marker, settle = self.ready_marker, self.settle_seconds
        folder = root.child(name)
        where = f" in {root.spec}'s source" if root.spec else ""
        newest, has_marker, count = 0, False, 0
        try:
            for f in list_files(folder.location, folder.options, recursive=bool(settle) and root.recursive,
                                store=self._stores.get(index)):
                count += 1
                newest = max(newest, f.mtime_ns)
                has_marker = has_marker or f.relative_path == marker
                if marker and has_marker and not settle:
                    break
        except SourceError as exc:
            return False, f"cannot be read{where}: {exc}"
        if count == 0:
            return False, f"empty or missing{where}"
        if marker and not has_marker:
            return False, f"no {marker} marker yet{where}"
        if settle and not marker:
            age = self.clock() - newest / 1e9
            if age < settle:
                return False, f"newest file is {age:.0f}s old{where}, settling for {settle}s"
        return True, ""
