"""One dynamic partition per batch, per pipeline.

The partitions definition's name is stored in the Dagster instance with every key, so it is derived
from the pipeline name once, here, and never renamed.
"""

from __future__ import annotations

import re

import dagster as dg

_KEY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")


def batches_partitions(pipeline_name: str) -> dg.DynamicPartitionsDefinition:
    return dg.DynamicPartitionsDefinition(name=f"{pipeline_name}_batches")


def check_batch_key(key: str) -> str:
    """Batch keys double as folder names and file names: letters, digits, '.', '_' and '-' only."""
    if not _KEY_RE.match(key) or key in (".", ".."):
        raise ValueError(
            f"batch key '{key}' is not usable: use letters, digits, '.', '_' and '-' (at most 200), starting with a letter or digit"
        )
    return key
