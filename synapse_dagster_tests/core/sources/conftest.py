"""Every source back end behind one fixture, so one suite (test_backends.py) runs over all of them.

A :class:`Backend` knows how to put bytes into a fresh folder of its server and how the code under test should
reach that folder: as a source URL, with connection options, and as a Synapse storage configuration.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from synapse_dagster.core.sources.location import SourceLocation, parse_source
from synapse_dagster.core.sources.options import ConnectionOptions
from synapse_dagster_tests.core.sources.trees import TREE


@dataclass
class Backend:
    name: str
    url: str  # the folder the test owns, as a source URL (a path for local disk)
    put: Callable[[str, bytes], None]  # relative path below ``url`` -> bytes
    options: ConnectionOptions
    storage: dict[str, Any]  # a Synapse storage whose root is ``url``'s container; see ``storage_path``
    storage_path: str  # ``url`` relative to that storage's root
    etags: bool  # whether listings carry a content MD5
    missing: str  # what the error says about a folder that is not there
    resumable: bool = False

    def location(self, relative: str = "") -> SourceLocation:
        location = parse_source(self.url)
        for part in filter(None, relative.split("/")):
            location = location.child(part)
        return location

    def file_uri(self, relative: str) -> str:
        return self.location().file_uri("") + relative

    def put_tree(self, tree: dict[str, bytes], under: str = "") -> None:
        for rel, data in tree.items():
            self.put(f"{under}{rel}", data)


def _local(tmp_path: Path) -> Backend:
    root = tmp_path / "local-root"
    root.mkdir()

    def put(rel: str, data: bytes) -> None:
        (root / "area" / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / "area" / rel).write_bytes(data)

    (root / "area").mkdir()
    return Backend("local", str(root / "area"), put, ConnectionOptions(),
                   {"provider": "file_system", "configuration": {"location": str(root)}}, "area", False,
                   "does not exist")


def _s3(server: Any) -> Backend:
    bucket = server.new_bucket("backend")
    storage = {"provider": "amazon_s3", "configuration": {
        "bucket_name": bucket, "access_key": server.access_key, "secret_key": server.secret_key,
        "region_name": "us-east-1", "endpoint_url": server.endpoint}}
    return Backend("s3", f"s3://{bucket}/area", lambda rel, data: server.put(bucket, f"area/{rel}", data),
                   server.options(), storage, "area", True, "no objects under this prefix", resumable=True)


def _gcs(server: Any) -> Backend:
    bucket = server.new_bucket("backend")
    storage = {"provider": "gcp", "configuration": {"bucket_name": bucket, "credentials": "anon"}}
    return Backend("gcs", f"gs://{bucket}/area", lambda rel, data: server.put(bucket, f"area/{rel}", data),
                   server.options(), storage, "area", True, "no objects under this prefix", resumable=True)


def _sftp(server: Any) -> Backend:
    folder = server.new_folder("backend")
    storage = {"provider": "sftp", "configuration": {
        "host": server.host, "port": server.port, "username": server.username, "password": server.password,
        "root_path": folder}}
    return Backend("sftp", server.url(f"{folder}/area"), lambda rel, data: server.put(f"{folder}/area/{rel}", data),
                   server.options(), storage, "area", False, "no such file or folder")


def _azure(server: Any) -> Backend:
    container = server.new_container("backend")
    storage = {"provider": "azure", "configuration": {
        "container_name": container, "account_name": server.account_name, "account_key": server.account_key,
        "endpoint_url": server.endpoint}}
    return Backend("azure", f"az://{container}/area", lambda rel, data: server.put(container, f"area/{rel}", data),
                   server.options(), storage, "area", True, "no objects under this prefix")


BACKENDS: dict[str, Callable[[pytest.FixtureRequest, Path], Backend]] = {
    "local": lambda request, tmp: _local(tmp),
    "s3": lambda request, tmp: _s3(request.getfixturevalue("s3_server")),
    "gcs": lambda request, tmp: _gcs(request.getfixturevalue("gcs_server")),
    "sftp": lambda request, tmp: _sftp(request.getfixturevalue("sftp_server")),
    "azure": lambda request, tmp: _azure(request.getfixturevalue("azurite_server")),
}


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    return BACKENDS[request.param](request, tmp_path)


@pytest.fixture
def silent_port():
    """A port that accepts TCP connections (the kernel's backlog) but never says a word."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock.getsockname()[1]


# The TREE batch below 'in/' of a fresh bucket or folder, with a sibling prefix that must not leak in.


@pytest.fixture
def s3_batch(s3_server):
    bucket = s3_server.new_bucket()
    for rel, data in TREE.items():
        s3_server.put(bucket, f"in/{rel}", data)
    s3_server.put(bucket, "in2/not-mine.txt", b"sibling prefix")
    s3_server.put(bucket, "in/empty-folder-marker/", b"")
    return bucket


@pytest.fixture
def gcs_batch(gcs_server):
    bucket = gcs_server.new_bucket()
    for rel, data in TREE.items():
        gcs_server.put(bucket, f"in/{rel}", data)
    gcs_server.put(bucket, "in2/not-mine.txt", b"sibling prefix")
    return bucket


@pytest.fixture
def sftp_batch(sftp_server):
    folder = sftp_server.new_folder()
    for rel, data in TREE.items():
        sftp_server.put(f"{folder}/in/{rel}", data)
    sftp_server.put(f"{folder}/in2/not-mine.txt", b"sibling")
    return folder
