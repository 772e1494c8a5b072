"""Sidecar files (JSON or YAML next to the data) parsed into meta values."""

from __future__ import annotations

import json
from typing import Any

import yaml

from synapse_dagster.core.meta.coercion import normalize


def read_sidecar(name: str, data: bytes) -> dict[str, Any]:
    """Parse a sidecar's bytes: ``.json`` as JSON, anything else as YAML (a superset of JSON)."""
    text = data.decode("utf-8-sig")
    parsed = json.loads(text) if name.lower().endswith(".json") else yaml.safe_load(text)
    if not isinstance(parsed, dict):
        raise ValueError("must hold an object of field: value pairs")
    return {str(k): normalize(v) for k, v in parsed.items()}
