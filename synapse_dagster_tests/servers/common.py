"""What every test server shares: names that never collide between tests sharing a server, and free ports."""

from __future__ import annotations

import itertools
import os
import socket

_names = itertools.count(1)


def unique(prefix: str) -> str:
    return f"{prefix}-{os.getpid()}-{next(_names)}"


def free_port() -> int:
    """A port on 127.0.0.1 nothing listens on (bound, read, released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
