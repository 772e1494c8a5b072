"""One dynamic partition per batch, per pipeline.

The partitions definition's name is stored in the Dagster instance with every key, so it is derived from the
pipeline name once, here, and never renamed.
"""

from __future__ import annotations

import dagster as dg


def batches_partitions(pipeline_name: str) -> dg.DynamicPartitionsDefinition:
    return dg.DynamicPartitionsDefinition(name=f"{pipeline_name}_batches")
