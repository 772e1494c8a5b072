"""A batch's inventory: every file of the batch, plus where each source's batch folder was listed."""

from __future__ import annotations

from dataclasses import dataclass

from synapse_dagster.core.sources.files import SourceFile


@dataclass(frozen=True)
class Inventory:
    batch: str
    roots: dict[str, str]  # spec (or "*" in single-path mode) -> the folder's URI
    files: list[SourceFile]
