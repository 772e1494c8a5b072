"""Where each step keeps its batch tables, and how many of them are kept.

Every materialization writes its tables to a folder of its own (asset and run), so a re-run never changes what an
earlier run's steps handed on. Only the newest few per asset and batch are kept: older ones are what a re-run
replaced, and a million-file batch's tables take hundreds of MB.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from synapse_dagster.core.tables.row_table import Spill

KEEP_PER_ASSET = 3


def step_spill(root: Path, *, pipeline: str, batch: str, asset: str, run_id: str, keep: int = KEEP_PER_ASSET) -> Spill:
    """The spill of one asset's materialization in run ``run_id``; the oldest folders beyond ``keep`` are removed.
    ``pipeline``, ``batch`` and ``asset`` are checked names (letters, digits, '.', '_', '-')."""
    parent = Path(root).expanduser() / pipeline / batch / asset
    spill = Spill(parent / run_id)
    older = sorted((p for p in parent.iterdir() if p.is_dir() and p.name != run_id), key=lambda p: p.stat().st_mtime)
    for stale in older[: max(0, len(older) - (keep - 1))]:
        shutil.rmtree(stale, ignore_errors=True)
    return spill
