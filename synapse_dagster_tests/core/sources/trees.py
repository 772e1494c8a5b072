"""The batch every source test lists, as a NAS drops it: nested folders and system junk."""

from __future__ import annotations

import hashlib
import socket
import time

from synapse_dagster.core.sources.files import SourceFile

TREE = {
    "P0001/scan.png": b"\x89PNG-one" * 10,
    "P0001/label.json": b'{"label": 1}',
    "P0002/deep/er/scan.png": b"\x89PNG-two" * 3,
    "meta.xlsx": b"sheet bytes",
    ".DS_Store": b"junk",
    "P0001/._scan.png": b"fork",
    "@eaDir/P0001/thumb.jpg": b"thumb",
}
EXPECTED_REASONS = {
    ".DS_Store": "system file '.DS_Store'",
    "P0001/._scan.png": "macOS resource fork ('._' file)",
    "@eaDir/P0001/thumb.jpg": "system folder '@eaDir'",
}
TOP_LEVEL_FILES = {"meta.xlsx", ".DS_Store"}


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def by_path(files: list[SourceFile]) -> dict[str, SourceFile]:
    return {f.relative_path: f for f in files}


def assert_tree_listed(files: list[SourceFile], uri_prefix: str, *, etags: bool) -> None:
    listed = by_path(files)
    assert set(listed) == set(TREE)
    for rel, data in TREE.items():
        f = listed[rel]
        assert f.uri == uri_prefix + rel
        assert f.size == len(data)
        assert f.excluded_reason == EXPECTED_REASONS.get(rel)
        assert f.etag == (md5(data) if etags else None)
        assert f.mtime_ns > 1_600_000_000 * 10**9
        assert f.fingerprint == f"{f.uri}|{f.size}|{f.etag or f.mtime_ns}"


def assert_secret_free(message: str, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in message


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def settled(values: list, length: int) -> list:
    """``values`` once it has ``length`` items (a loaded machine may be slow to run the thread), after a pause
    that would let a read-ahead that runs further than it should do so."""
    deadline = time.monotonic() + 10
    while len(values) < length and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)
    return list(values)
