"""Dagster resources: the Synapse client and the ingestion state directory."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from pydantic import Field
from synapse_sdk.clients.backend import BackendClient

from synapse_dagster.core.deliver.ledger import Ledger
from synapse_dagster.core.synapse.credentials import DEFAULT_CONFIG_FILE, SynapseCredentials, resolve_credentials


class SynapseResource(dg.ConfigurableResource):
    """A Synapse backend. Leave ``host``/``access_token`` unset to read SYNAPSE_* env vars or ~/.synapse/config.json,
    so the token never sits in Dagster run config."""

    host: str | None = Field(default=None, description="Synapse API base URL; default: SYNAPSE_HOST.")
    access_token: str | None = Field(default=None, description="Prefer dg.EnvVar('SYNAPSE_ACCESS_TOKEN').")
    tenant: str | None = Field(default=None, description="Tenant code; default: SYNAPSE_TENANT.")
    config_file: str = Field(default=DEFAULT_CONFIG_FILE, description="Written by 'synapse login'.")
    read_timeout_s: int = Field(default=120, ge=5, description="Read timeout of API calls in seconds.")

    def credentials(self) -> SynapseCredentials:
        return resolve_credentials(self.host, self.access_token, self.tenant, self.config_file)

    def client(self) -> BackendClient:
        creds = self.credentials()
        return BackendClient(
            base_url=creds.host,
            access_token=creds.access_token,
            tenant=creds.tenant,
            timeout={"connect": 5, "read": self.read_timeout_s},
        )


class IngestStateResource(dg.ConfigurableResource):
    """Where the ingestion ledger lives (what was uploaded and created, per Synapse target)."""

    state_dir: str = Field(description="Directory for the ledger; keep it on durable storage.")

    def ledger(self) -> Ledger:
        return Ledger(Path(self.state_dir).expanduser() / "ledger.sqlite3")
