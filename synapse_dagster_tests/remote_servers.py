"""Real local S3, GCS and SFTP servers for tests, each started once per session on a free port of 127.0.0.1.

- S3: moto's server in a thread, with IAM authentication switched on, so wrong keys and missing permissions
  fail the way they do on AWS (moto accepts any key otherwise).
- GCS: gcp-storage-emulator in a thread (it has no authentication).
- SFTP: an asyncssh server on its own event loop thread: password login, a fresh host key (written to a
  known_hosts file, so clients check it), a temp folder as its root, and a ``forbidden`` folder name that
  answers "permission denied" (the tests run as root, where chmod would not stop anything).

Tests share a server, so each one uses its own bucket or folder (``new_bucket`` / ``new_folder``).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import secrets
import threading
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from synapse_dagster.core.sources.options import ConnectionOptions

__all__ = ["S3Server", "GCSServer", "SFTPServer", "s3_server", "gcs_server", "sftp_server"]

_names = itertools.count(1)


def _unique(prefix: str) -> str:
    return f"{prefix}-{os.getpid()}-{next(_names)}"


# --- S3 (moto) -------------------------------------------------------------------------------------------------


@dataclass
class S3Server:
    endpoint: str
    access_key: str
    secret_key: str = field(repr=False)
    limited_access_key: str  # may only touch buckets named "open-*"
    limited_secret_key: str = field(repr=False)
    region: str = "us-east-1"
    _client: Any = field(default=None, repr=False, compare=False)

    def options(self, **overrides: Any) -> ConnectionOptions:
        values = {
            "endpoint_url": self.endpoint,
            "region": self.region,
            "access_key": self.access_key,
            "secret_key": self.secret_key,
            "connect_timeout": 2.0,
            "max_attempts": 2,
        }
        return ConnectionOptions(**{**values, **overrides})

    def client(self) -> Any:
        """A botocore S3 client with the admin key (made once: building one costs about 0.1 s)."""
        if self._client is None:
            import botocore.session

            self._client = botocore.session.get_session().create_client(
                "s3",
                endpoint_url=self.endpoint,
                region_name=self.region,
                aws_access_key_id=self.access_key,
                aws_secret_access_key=self.secret_key,
            )
        return self._client

    def new_bucket(self, prefix: str = "bucket") -> str:
        name = _unique(prefix)
        self.client().create_bucket(Bucket=name)
        return name

    def put(self, bucket: str, key: str, data: bytes) -> None:
        self.client().put_object(Bucket=bucket, Key=key, Body=data)


def _moto_auth(endpoint: str, count: str) -> None:
    request = urllib.request.Request(
        f"{endpoint}/moto-api/reset-auth", data=count.encode(), method="POST", headers={"Content-Type": "text/plain"}
    )
    urllib.request.urlopen(request, timeout=10).read()


@pytest.fixture(scope="session")
def s3_server() -> S3Server:
    import botocore.session
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    try:
        iam = botocore.session.get_session().create_client(
            "iam",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="setup",
            aws_secret_access_key="setup",
        )
        keys = {}
        for user, resources in (("admin", ["*"]), ("limited", ["arn:aws:s3:::open-*", "arn:aws:s3:::open-*/*"])):
            iam.create_user(UserName=user)
            policy = {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": resources}],
            }
            iam.put_user_policy(UserName=user, PolicyName="s3", PolicyDocument=json.dumps(policy))
            keys[user] = iam.create_access_key(UserName=user)["AccessKey"]
        _moto_auth(endpoint, "0")  # from now on every request must be signed by a known key and be allowed
        yield S3Server(
            endpoint,
            keys["admin"]["AccessKeyId"],
            keys["admin"]["SecretAccessKey"],
            keys["limited"]["AccessKeyId"],
            keys["limited"]["SecretAccessKey"],
        )
        _moto_auth(endpoint, "inf")
    finally:
        server.stop()


# --- GCS (gcp-storage-emulator) --------------------------------------------------------------------------------


@dataclass
class GCSServer:
    endpoint: str
    _client: Any = field(default=None, repr=False, compare=False)

    def options(self, **overrides: Any) -> ConnectionOptions:
        values = {
            "gcs_endpoint": self.endpoint,
            "gcs_token": "anon",
            "gcs_project": "test",
            "connect_timeout": 2.0,
            "max_attempts": 2,
        }
        return ConnectionOptions(**{**values, **overrides})

    def client(self) -> Any:
        if self._client is None:
            from google.auth.credentials import AnonymousCredentials
            from google.cloud import storage

            self._client = storage.Client(
                project="test", credentials=AnonymousCredentials(), client_options={"api_endpoint": self.endpoint}
            )
        return self._client

    def new_bucket(self, prefix: str = "bucket") -> str:
        name = _unique(prefix)
        self.client().create_bucket(name)
        return name

    def put(self, bucket: str, name: str, data: bytes) -> None:
        self.client().bucket(bucket).blob(name).upload_from_string(data)


@pytest.fixture(scope="session")
def gcs_server() -> GCSServer:
    from gcp_storage_emulator.server import create_server

    # For code that goes through gcsfs (e.g. the SDK's get_pathlib): without this, gcsfs 2026.x stalls for 60 s
    # per operation probing the emulator over gRPC.
    os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")
    logging.getLogger("gcp_storage_emulator").setLevel(logging.WARNING)
    server = create_server("127.0.0.1", 0, in_memory=True)
    server.start()
    try:
        port = server._api._httpd.server_address[1]  # port 0 picked a free one; the emulator has no getter
        yield GCSServer(f"http://127.0.0.1:{port}")
    finally:
        server.stop()


# --- SFTP (asyncssh) -------------------------------------------------------------------------------------------


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
        name = _unique(prefix)
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
