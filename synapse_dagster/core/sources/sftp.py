"""SFTP through asyncssh, one directory at a time, from synchronous code.

asyncssh is what fsspec's ``sftp://`` resolves to here (via sshfs), so there is no second SSH stack. It is
driven directly rather than through sshfs so that connect, login and host-key failures keep their types (and
become precise messages), ``client_keys`` is used for key files (the SDK passes paramiko's ``key_filename``,
which asyncssh rejects), and host keys are checked (sshfs turns the check off by default). The session runs
on a private event loop thread, so callers stay synchronous and never meet a running loop.
"""

from __future__ import annotations

import asyncio
import posixpath
import threading
from collections.abc import Coroutine, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import replace
from typing import Any, TypeVar

import asyncssh

from synapse_dagster.core.sources.files import SourceError
from synapse_dagster.core.redaction import redact
from synapse_dagster.core.sources.location import SourceLocation, folder_path
from synapse_dagster.core.sources.options import ConnectionOptions
from synapse_dagster.core.sources.store import CHUNK_SIZE, CopySink, ListedFile

T = TypeVar("T")


class _LoopThread:
    """An event loop on a daemon thread; ``run`` blocks the caller until a coroutine finishes there."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="sftp-source", daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()
            raise

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
        if not self._thread.is_alive():
            self.loop.close()


class SFTPStore:
    """One SSH session to ``location``'s host, port and user."""

    def __init__(self, options: ConnectionOptions, location: SourceLocation) -> None:
        self._options = options
        self._server = f"{location.host}:{location.port}"
        self._user = location.user or options.sftp_username
        self._loop = _LoopThread()
        self._conn: asyncssh.SSHClientConnection | None = None
        try:
            with self._errors(location):
                self._conn, self._sftp = self._loop.run(self._connect(location), timeout=options.connect_timeout + 5)
        except BaseException:
            self.close()
            raise

    async def _connect(self, location: SourceLocation) -> tuple[asyncssh.SSHClientConnection, asyncssh.SFTPClient]:
        options = self._options
        kwargs: dict[str, Any] = {
            "port": location.port or 22,
            "username": self._user,
            "password": options.sftp_password,
            "connect_timeout": options.connect_timeout,
        }
        if options.sftp_key_file:
            kwargs.update(client_keys=[options.sftp_key_file], passphrase=options.sftp_key_passphrase, agent_path=None)
        elif options.sftp_password:
            kwargs.update(client_keys=None, agent_path=None)  # only the password: no surprise keys from ~/.ssh
        if options.sftp_host_key_policy == "accept-any":
            kwargs["known_hosts"] = None
        elif options.sftp_known_hosts:
            kwargs["known_hosts"] = options.sftp_known_hosts
        conn = await asyncssh.connect(location.host, **kwargs)
        try:
            return conn, await conn.start_sftp_client()
        except BaseException:
            conn.close()
            raise

    def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None

            async def _close() -> None:
                conn.close()
                await conn.wait_closed()

            with suppress(Exception):  # closing a broken session must not hide the real error
                self._loop.run(_close(), timeout=5)
        self._loop.close()

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self._loop.run(coro, timeout=self._options.read_timeout + self._options.connect_timeout)

    def check(self, location: SourceLocation, *, allow_empty: bool = False) -> None:
        with self._errors(location):
            attrs = self._run(self._sftp.stat(location.path))
            if attrs.type != asyncssh.FILEXFER_TYPE_DIRECTORY:
                raise SourceError(f"{location.uri}: is a file, not a folder; point the source at its folder")
            names = self._run(self._sftp.listdir(location.path))
        if not allow_empty and not [n for n in names if n not in (".", "..")]:
            raise SourceError(f"{location.uri}: the folder is empty; check the path")

    def iter_files(self, location: SourceLocation, *, recursive: bool, start_after: str | None = None) -> Iterator[ListedFile]:
        if start_after is not None:
            raise ValueError("SFTP listings cannot resume after a key")
        with self._errors(location):
            yield from self._walk(location, location.path, "", recursive)

    def _walk(self, location: SourceLocation, directory: str, prefix: str, recursive: bool) -> Iterator[ListedFile]:
        subdirs = []
        for name, attrs in self._entries(directory):
            path = posixpath.join(directory, name)
            if attrs.type == asyncssh.FILEXFER_TYPE_DIRECTORY:
                subdirs.append((path, f"{prefix}{name}/"))
            elif attrs.type == asyncssh.FILEXFER_TYPE_REGULAR:
                mtime_ns = (attrs.mtime or 0) * 1_000_000_000 + (attrs.mtime_ns or 0)
                yield ListedFile(f"{prefix}{name}", location.file_uri(path), attrs.size or 0, mtime_ns, None)
            else:  # never silently dropped: a link or a device is listed, refused and reported
                kind = "a symbolic link (links on SFTP servers are not followed)" if \
                    attrs.type == asyncssh.FILEXFER_TYPE_SYMLINK else "not a regular file"
                yield ListedFile(f"{prefix}{name}", location.file_uri(path), 0, 0, None,
                                 f"is {kind}; copy the file itself into the source")
        if recursive:
            for path, sub_prefix in subdirs:
                yield from self._walk(location, path, sub_prefix, recursive)

    def _entries(self, directory: str) -> list[tuple[str, asyncssh.SFTPAttrs]]:
        """One directory's entries, sorted by name, with symbolic links resolved (dangling ones dropped)."""
        entries = []
        for entry in sorted(self._run(self._sftp.readdir(directory)), key=lambda e: e.filename):
            name = str(entry.filename)
            if name in (".", ".."):
                continue
            attrs = entry.attrs
            if attrs.type == asyncssh.FILEXFER_TYPE_SYMLINK:
                try:
                    attrs = self._run(self._sftp.stat(posixpath.join(directory, name)))
                except (asyncssh.SFTPNoSuchFile, asyncssh.SFTPNoSuchPath):
                    continue
            entries.append((name, attrs))
        return entries

    def iter_subfolders(self, location: SourceLocation, *, start_after: str | None) -> Iterator[str]:
        with self._errors(location):
            for name, attrs in self._entries(location.path):
                if attrs.type != asyncssh.FILEXFER_TYPE_DIRECTORY:
                    continue
                if start_after is None or name > start_after:
                    yield name

    def download(self, location: SourceLocation, key: str, out: CopySink, *, etag: str | None) -> None:
        async def copy() -> None:
            async with self._sftp.open(key, "rb") as remote:
                while chunk := await remote.read(CHUNK_SIZE):
                    out.write(chunk)

        with self._errors(replace(location, path=key)):
            self._run(copy())

    @contextmanager
    def _errors(self, location: SourceLocation) -> Iterator[None]:
        try:
            yield
        except SourceError:
            raise
        except (asyncssh.SFTPNoSuchFile, asyncssh.SFTPNoSuchPath):
            raise SourceError(f"{location.uri}: no such file or folder on the server; check the path") from None
        except asyncssh.SFTPPermissionDenied:
            raise SourceError(
                f"{location.uri}: access denied for user '{self._user}'; ask for read access to this folder"
            ) from None
        except asyncssh.PermissionDenied:
            raise SourceError(
                f"{location.uri}: login refused for user '{self._user}' on {self._server}; check the user name and "
                "the password (SFTP_PASSWORD) or private key"
            ) from None
        except asyncssh.HostKeyNotVerifiable:
            raise SourceError(
                f"{location.uri}: the host key of {self._server} is not trusted; add it to the known_hosts file "
                f"({self._options.sftp_known_hosts or '~/.ssh/known_hosts'}, e.g. with ssh-keyscan) or set "
                "SFTP_KNOWN_HOSTS"
            ) from None
        except asyncssh.KeyImportError as exc:
            raise SourceError(redact(f"{location.uri}: the private key could not be read ({exc})")) from None
        except asyncssh.SFTPError as exc:
            raise SourceError(redact(f"{location.uri}: the server refused: {exc.reason}")) from None
        except asyncssh.DisconnectError as exc:
            raise SourceError(redact(f"{location.uri}: {self._server} closed the connection: {exc.reason}")) from None
        except TimeoutError:
            raise SourceError(
                f"{location.uri}: {self._server} did not answer within {self._options.connect_timeout:g} s; check the "
                "host, the port and the firewall"
            ) from None
        except FileNotFoundError as exc:  # a missing key or known_hosts file (remote misses are SFTPNoSuchFile)
            raise SourceError(redact(f"{location.uri}: local file not found: {exc.filename}")) from None
        except OSError as exc:
            raise SourceError(
                redact(f"{location.uri}: cannot reach {self._server} ({exc.strerror or exc}); check the host and port")
            ) from None


def connect(location: SourceLocation, options: ConnectionOptions, *, checking: bool = False) -> SFTPStore:
    return SFTPStore(options, location)


def from_storage(config: Mapping[str, Any], relative: str, options: ConnectionOptions, need) -> tuple[SourceLocation, ConnectionOptions]:
    """A Synapse SFTP storage: host, port, username, password or private_key (+ passphrase), root_path."""
    root = str(config.get("root_path") or "/")
    resolved = options.with_values(
        sftp_username=need("username"),
        sftp_password=config.get("password"),
        sftp_key_file=config.get("private_key"),
        sftp_key_passphrase=config.get("private_key_passphrase"),
    )
    port = int(config.get("port") or 22)
    path = folder_path(posixpath.join("/", root, relative))
    return SourceLocation("sftp", need("host"), path, port, resolved.sftp_username), resolved
