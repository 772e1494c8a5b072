"""What a batch key may be: it is a Dagster partition key, a folder name and part of file names at once."""

from __future__ import annotations

import re

class BatchKeyError(ValueError):
    """A batch key that cannot name a partition, a folder and a file at once."""


_KEY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")


def check_batch_key(key: str) -> str:
    """Letters, digits, '.', '_' and '-' only, so a key never walks out of a folder or breaks a URL."""
    if not _KEY_RE.match(key) or key in (".", ".."):
        raise BatchKeyError(
            f"batch key '{key}' is not usable: use letters, digits, '.', '_' and '-' (at most 200), starting with a letter or digit"
        )
    return key
