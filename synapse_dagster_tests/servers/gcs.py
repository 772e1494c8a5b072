"""GCS: gcp-storage-emulator in a thread (it has no authentication)."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any

import pytest

from synapse_dagster.core.sources.options import ConnectionOptions
from synapse_dagster_tests.servers.common import unique


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
        name = unique(prefix)
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
