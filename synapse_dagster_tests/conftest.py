"""Shared fixtures: one real Synapse sandbox process per test session, fresh collections per test."""

from __future__ import annotations

import itertools
import json
import secrets
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from synapse_sdk.clients.backend import BackendClient

from synapse_sandbox.demo_data import META_SCHEMA, demo_seed

pytest_plugins = ["synapse_dagster_tests.servers.s3", "synapse_dagster_tests.servers.gcs", "synapse_dagster_tests.servers.sftp",
                  "synapse_dagster_tests.servers.azurite", "synapse_dagster_tests.servers.postgres"]


@dataclass
class Sandbox:
    url: str
    token: str
    data_dir: Path

    def client(self, token: str | None = None) -> BackendClient:
        return BackendClient(base_url=self.url, access_token=token or self.token)

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        request = urllib.request.Request(
            f"{self.url}/_sandbox/{path}",
            data=None if body is None else json.dumps(body).encode(),
            method=method,
            headers={"Synapse-Access-Token": f"Token {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            raw = response.read()
            return json.loads(raw) if raw else None

    def seed(self, seed: dict[str, Any]) -> None:
        self.admin("POST", "seed", seed)

    def set_faults(self, rules: list[dict[str, Any]]) -> None:
        self.admin("PUT", "faults", {"rules": rules})

    def stats(self) -> dict[str, Any]:
        return self.admin("GET", "stats")

    def units(self, collection: int) -> list[dict[str, Any]]:
        pages, _ = self.client().list_data_units(
            params={"data_collection": collection}, list_all=True, url_conversion={}, page_size=200
        )
        return list(pages)


_collection_ids = itertools.count(100)


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory) -> Sandbox:
    from synapse_sandbox.server import start_sandbox_process

    data_dir = tmp_path_factory.mktemp("sandbox")
    token = secrets.token_urlsafe(16)
    seed_file = data_dir / "seed.json"
    seed_file.write_text(json.dumps(demo_seed(str(data_dir / "storage"))))
    with start_sandbox_process(data_dir, token, port=0, seed=seed_file) as process:
        yield Sandbox(url=process.url, token=token, data_dir=data_dir)


@pytest.fixture
def collection(sandbox) -> int:
    """A new, empty data collection shaped like the demo's (image_1 + label_1, typed meta schema)."""
    return new_collection(sandbox)


def new_collection(sandbox: Sandbox) -> int:
    """A new, empty data collection shaped like the demo's (for a test that needs more than one)."""
    collection_id = next(_collection_ids)
    seed = demo_seed("unused")
    spec = seed["data_collections"][0]
    spec.update(id=collection_id, name=f"test collection {collection_id}")
    sandbox.seed({"data_collections": [spec]})
    return collection_id


@pytest.fixture
def synapse_env(sandbox, monkeypatch, tmp_path):
    monkeypatch.setenv("SYNAPSE_HOST", sandbox.url)
    monkeypatch.setenv("SYNAPSE_ACCESS_TOKEN", sandbox.token)
    monkeypatch.delenv("SYNAPSE_TENANT", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no ~/.synapse/config.json leaks in
    return sandbox


__all__ = ["META_SCHEMA", "new_collection"]
