"""SFTP: an asyncssh server on its own event loop thread: password login, a fresh host key (written to a
known_hosts file, so clients check it), a temp folder as its root, and a ``forbidden`` folder name that answers
"permission denied" (the tests run as root, where chmod would not stop anything)."""

from __future__ import annotations

import asyncio
import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from synapse_dagster.core.sources.options import ConnectionOptions
from synapse_dagster_tests.servers.common import unique


@dataclass
class SFTPServer:
    host: str
    port: int
    username: str
    password: str = field(repr=False)
    root: Path
    known_hosts: Path

    def options(self, **overrides: Any) -> ConnectionOptions:
        values = {
            "sftp_username": self.username,
            "sftp_password": self.password,
            "sftp_known_hosts": str(self.known_hosts),
            "connect_timeout": 3.0,
        }
        return ConnectionOptions(**{**values, **overrides})

    def url(self, path: str) -> str:
        return f"sftp://{self.username}@{self.host}:{self.port}/{path.lstrip('/')}"

    def new_folder(self, prefix: str = "folder") -> str:
        """A new empty folder below the server's root; returns its absolute path as the client sees it."""
        name = unique(prefix)
        (self.root / name).mkdir()
        return f"/{name}"

    def put(self, path: str, data: bytes) -> None:
        target = self.root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


@pytest.fixture(scope="session")
def sftp_server(tmp_path_factory) -> SFTPServer:
    import asyncssh

    root = tmp_path_factory.mktemp("sftp-root")
    username, password = "tester", secrets.token_urlsafe(12)
    host_key = asyncssh.generate_private_key("ssh-ed25519")

    class Auth(asyncssh.SSHServer):
        def begin_auth(self, user: str) -> bool:
            return True

        def password_auth_supported(self) -> bool:
            return True

        def validate_password(self, user: str, given: str) -> bool:
            return user == username and secrets.compare_digest(given, password)

    class RootedSFTP(asyncssh.SFTPServer):
        def __init__(self, chan: Any) -> None:
            super().__init__(chan, chroot=str(root).encode())

        @staticmethod
        def _guard(path: bytes) -> None:
            if b"forbidden" in path.split(b"/"):
                raise asyncssh.SFTPPermissionDenied("permission denied")

        def scandir(self, path: bytes):  # type: ignore[override]
            self._guard(path)
            return super().scandir(path)

        def open(self, path: bytes, pflags: int, attrs: Any):  # type: ignore[override]
            self._guard(path)
            return super().open(path, pflags, attrs)

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="sftp-test-server", daemon=True)
    thread.start()

    async def start() -> Any:
        return await asyncssh.listen(
            "127.0.0.1", 0, server_factory=Auth, server_host_keys=[host_key], sftp_factory=RootedSFTP, allow_scp=False
        )

    acceptor = asyncio.run_coroutine_threadsafe(start(), loop).result(10)
    port = acceptor.get_port()
    known_hosts = root.parent / f"{root.name}-known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{port} {host_key.export_public_key().decode().strip()}\n")
    try:
        yield SFTPServer("127.0.0.1", port, username, password, root, known_hosts)
    finally:

        async def stop() -> None:
            acceptor.close()
            await acceptor.wait_closed()

        asyncio.run_coroutine_threadsafe(stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        loop.close()
