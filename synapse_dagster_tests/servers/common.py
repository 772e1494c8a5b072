"""What every test server shares: names that never collide between tests sharing a server."""

from __future__ import annotations

import itertools
import os

_names = itertools.count(1)


def unique(prefix: str) -> str:
    return f"{prefix}-{os.getpid()}-{next(_names)}"
