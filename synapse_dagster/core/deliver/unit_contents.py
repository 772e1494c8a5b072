"""What a data unit holds, as one digest: its files' checksums and its meta, so a unit whose ``dataset_key`` already
exists can be told apart from a re-run of the same unit (the same digest) and a different unit under a taken key.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from synapse_dagster.core.deliver.ledger import IndexedUnit
from synapse_dagster.core.meta.merge import DATASET_KEY_FIELD

VERSION_SEPARATOR = "#v"
PREVIOUS_VERSION_FIELD = "previous_version_unit_id"
MAX_VERSIONS = 1000


def content_digest(checksums: Mapping[str, str], meta: Mapping[str, Any]) -> str:
    canonical = json.dumps({"files": dict(sorted(checksums.items())), "meta": meta}, sort_keys=True,
                           separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha1(canonical.encode("utf-8"), usedforsecurity=False).hexdigest()


def record_digest(unit: Mapping[str, Any]) -> str | None:
    """The digest of a unit record as the server lists it, or ``None`` when it does not show every checksum."""
    files = unit.get("files")
    if not isinstance(files, Mapping) or not files:
        return None
    checksums = {spec: f.get("checksum") for spec, f in files.items() if isinstance(f, Mapping)}
    if len(checksums) != len(files) or not all(isinstance(c, str) and c for c in checksums.values()):
        return None
    return content_digest(checksums, unit.get("meta") or {})


def indexed_unit(unit: Mapping[str, Any]) -> tuple[IndexedUnit, int] | None:
    """A listed unit for the ledger's key index: its key and digest, with its id."""
    key = (unit.get("meta") or {}).get(DATASET_KEY_FIELD)
    if key is None or not isinstance(unit.get("id"), int):
        return None
    return IndexedUnit(str(key), record_digest(unit)), unit["id"]


def versioned_key(dataset_key: str, version: int) -> str:
    return f"{dataset_key}{VERSION_SEPARATOR}{version}"
