"""Dagster resources: the Synapse backend, the ingestion state, and the sources of a pipeline.

Each is created once per run (once per step process under the multiprocess executor) and caches what it
resolves, so a run asks Synapse for a storage once and checks each source once.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import Field, PrivateAttr

from synapse_dagster.core.tables.folders import step_spill
from synapse_dagster.core.tables.row_table import Spill
from synapse_sdk.clients.backend import BackendClient

from synapse_dagster.config.models import PipelineConfig
from synapse_dagster.core.deliver.ledger import Ledger
from synapse_dagster.core.sources.roots import SourceRoot, resolve_roots
from synapse_dagster.core.synapse.limiter import DEFAULT_MAX_CONCURRENCY
from synapse_dagster.core.synapse.transport import guard_creates
from synapse_dagster.defs.run_workers import record_run_worker
from synapse_dagster.core.synapse.credentials import DEFAULT_CONFIG_FILE, SynapseCredentials, resolve_credentials


API_CONCURRENCY_ENV = "SYNAPSE_DAGSTER_API_CONCURRENCY"


class SettingError(ValueError):
    """An environment setting of the code location that cannot be used; the message names the variable."""


def api_concurrency_setting() -> int | None:
    """``SYNAPSE_DAGSTER_API_CONCURRENCY``, checked when the code location loads (a bad value names the variable)."""
    value = os.environ.get(API_CONCURRENCY_ENV, "").strip()
    if value and not (value.isdigit() and 1 <= int(value) <= 256):
        raise SettingError(f"{API_CONCURRENCY_ENV} must be a whole number from 1 to 256, not {value!r}")
    return int(value) if value else None


LEDGER_URL_ENV = "SYNAPSE_DAGSTER_LEDGER_URL"  # the ledger's database: default a SQLite file in the state dir


class SynapseResource(dg.ConfigurableResource):
    """A Synapse backend. Leave ``host``/``access_token`` unset to read SYNAPSE_* env vars or ~/.synapse/config.json,
    so the token never sits in Dagster run config."""

    host: str | None = Field(default=None, description="Synapse API base URL; default: SYNAPSE_HOST.")
    access_token: str | None = Field(default=None, description="Prefer dg.EnvVar('SYNAPSE_ACCESS_TOKEN').")
    tenant: str | None = Field(default=None, description="Tenant code; default: SYNAPSE_TENANT.")
    config_file: str = Field(default=DEFAULT_CONFIG_FILE, description="Written by 'synapse login'.")
    read_timeout_s: int = Field(default=120, ge=1, description="Read timeout of API calls in seconds.")
    upload_timeout_s: int = Field(default=300, ge=1, description=(
        "Timeout of one file's upload (or one multipart part) to storage, in seconds; raise it for files of GBs."))
    max_concurrent_requests: int | None = Field(default=None, ge=1, le=256, description=(
        "API requests in flight at once per process, fewer while the server answers 429; default: "
        f"{API_CONCURRENCY_ENV} or {DEFAULT_MAX_CONCURRENCY}. Across runs, times the synapse_api pool's limit."))
    _credentials: SynapseCredentials | None = PrivateAttr(default=None)
    _client: BackendClient | None = PrivateAttr(default=None)
    _storages: dict[int, Mapping[str, Any]] = PrivateAttr(default_factory=dict)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        if context.instance is not None:  # so a run that dies here is known to be dead (see run_workers)
            record_run_worker(context.instance, context.run)

    def credentials(self) -> SynapseCredentials:
        if self._credentials is None:
            self._credentials = resolve_credentials(self.host, self.access_token, self.tenant, self.config_file)
        return self._credentials

    def client(self) -> BackendClient:
        if self._client is None:
            creds = self.credentials()
            self._client = guard_creates(BackendClient(
                base_url=creds.host,
                access_token=creds.access_token,
                tenant=creds.tenant,
                timeout={"connect": 5, "read": self.read_timeout_s},
            ), max_concurrency=self.api_concurrency())
        return self._client

    def api_concurrency(self) -> int:
        return self.max_concurrent_requests or api_concurrency_setting() or DEFAULT_MAX_CONCURRENCY

    def storage(self, storage_id: int) -> Mapping[str, Any]:
        """The storage with its configuration (which may hold credentials: keep it in memory only).

        ``get_storage`` returns a pydantic model (the SDK's docs index it like a dict, which fails); it is dumped
        here once.
        """
        if storage_id not in self._storages:
            found = self.client().get_storage(storage_id)
            self._storages[storage_id] = found.model_dump() if hasattr(found, "model_dump") else dict(found)
        return self._storages[storage_id]


class IngestStateResource(dg.ConfigurableResource):
    """Where the ingestion ledger lives (what was uploaded and created, per Synapse target).

    A SQLite file under ``state_dir`` unless ``ledger_url`` names a database; runs that may land on different
    hosts must share one (``postgresql://user@host/db``), or each host would start from an empty cache.
    """

    state_dir: str = Field(description="Directory for the SQLite ledger; keep it on durable storage.")
    ledger_url: str | None = Field(default=None, description=(
        "A SQLAlchemy URL (sqlite:///… or postgresql://…) for the ledger; prefer "
        "dg.EnvVar('SYNAPSE_DAGSTER_LEDGER_URL') so a password never sits in run config."))

    def ledger(self) -> Ledger:
        return Ledger(self.ledger_url or ledger_file(self.state_dir))

    def spill(self, *, pipeline: str, batch: str, asset: str, run_id: str) -> Spill:
        """Where one materialization writes its batch tables (the inventory, the units, the plan)."""
        return step_spill(Path(self.state_dir) / "tables", pipeline=pipeline, batch=batch, asset=asset, run_id=run_id)


def ledger_file(state_dir: str | Path) -> Path:
    return Path(state_dir).expanduser() / "ledger.sqlite3"


class SourcesResource(dg.ConfigurableResource):
    """The pipelines' sources, resolved once per run: paths relative to ``base_dir``, storage-relative paths
    through the pipeline's Synapse storage (asked only when such a path exists)."""


    base_dir: str = Field(description="The pipeline file's folder: relative source paths start here.")
    _roots: dict[str, list[SourceRoot]] = PrivateAttr(default_factory=dict)

    def roots(self, pipeline: PipelineConfig, synapse: SynapseResource) -> list[SourceRoot]:
        if pipeline.name not in self._roots:
            self._roots[pipeline.name] = resolve_roots(
                pipeline.source_settings(), owner=pipeline.label, base_dir=Path(self.base_dir),
                storage=lambda: synapse.storage(pipeline.storage), storage_id=pipeline.storage,
            )
        return self._roots[pipeline.name]
