"""Azure Blob Storage: Azurite (the npm package scripts/bootstrap.sh installs into .venv/azurite) as a subprocess.

Azurite checks Shared Key signatures, so a wrong account key fails the way it does on Azure. It is started on
port 0 and says which port it got, so no two sessions race for one.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from synapse_dagster.core.sources.options import ConnectionOptions
from synapse_dagster_tests.servers.common import unique

ROOT = Path(__file__).resolve().parents[2]
AZURITE = ROOT / ".venv" / "azurite" / "node_modules" / ".bin" / "azurite-blob"
# Azurite's one built-in account; the key is published in Azurite's documentation.
DEV_ACCOUNT = "devstoreaccount1"
DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
_LISTENING = re.compile(r"listens on (http://\S+)")


@dataclass
class AzuriteServer:
    endpoint: str  # the account's blob endpoint: http://127.0.0.1:<port>/devstoreaccount1
    account_name: str = DEV_ACCOUNT
    account_key: str = field(default=DEV_KEY, repr=False)
    _client: Any = field(default=None, repr=False, compare=False)

    @property
    def connection_string(self) -> str:
        return (f"DefaultEndpointsProtocol=http;AccountName={self.account_name};AccountKey={self.account_key};"
                f"BlobEndpoint={self.endpoint};")

    def options(self, **overrides: Any) -> ConnectionOptions:
        values = {
            "azure_endpoint": self.endpoint,
            "azure_account_name": self.account_name,
            "azure_account_key": self.account_key,
            "connect_timeout": 2.0,
            "max_attempts": 2,
        }
        return ConnectionOptions(**{**values, **overrides})

    def client(self) -> Any:
        """A synchronous BlobServiceClient with the account key, independent of the code under test."""
        if self._client is None:
            from azure.storage.blob import BlobServiceClient

            self._client = BlobServiceClient.from_connection_string(self.connection_string)
        return self._client

    def new_container(self, prefix: str = "container") -> str:
        name = unique(prefix)
        self.client().create_container(name)
        return name

    def put(self, container: str, key: str, data: bytes) -> None:
        self.client().get_blob_client(container, key).upload_blob(data, overwrite=True)


def _wait_listening(process: subprocess.Popen, timeout: float = 60.0) -> str:
    """The URL Azurite prints once it listens (it picks the port itself when given port 0)."""
    found: list[str] = []
    lines: list[str] = []

    def read() -> None:
        for line in process.stdout:  # type: ignore[union-attr]
            lines.append(line)
            match = _LISTENING.search(line)
            if match and not found:
                found.append(match.group(1))

    threading.Thread(target=read, name="azurite-output", daemon=True).start()  # keeps draining the pipe
    deadline = time.monotonic() + timeout
    while not found and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    if not found:
        raise RuntimeError(f"Azurite did not start: {''.join(lines)[-2000:]}")
    return found[0]


def _wait_answering(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(f"{url}?comp=list", timeout=2).read()
            return
        except urllib.error.HTTPError:
            return  # 403 for an unsigned request: it answers
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@pytest.fixture(scope="session")
def azurite_server(tmp_path_factory) -> AzuriteServer:
    if not os.access(AZURITE, os.X_OK):
        pytest.skip(f"Azurite is not installed ({AZURITE} is missing); run scripts/test, which installs it with npm")
    workspace = tmp_path_factory.mktemp("azurite")
    command = [str(AZURITE), "--blobHost", "127.0.0.1", "--blobPort", "0", "--location", str(workspace),
               "--silent", "--skipApiVersionCheck", "--loose", "--disableTelemetry"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                               text=True, start_new_session=True)
    try:
        base = _wait_listening(process)
        _wait_answering(f"{base}/{DEV_ACCOUNT}")
        yield AzuriteServer(f"{base}/{DEV_ACCOUNT}")
    finally:
        _stop(process)


def _stop(process: subprocess.Popen) -> None:
    """Stop Azurite and anything it started (it runs node under a shell wrapper): the whole process group."""
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        try:
            process.wait(wait)
            break
        except subprocess.TimeoutExpired:
            continue
