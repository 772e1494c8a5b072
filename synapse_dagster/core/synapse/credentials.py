"""Where the Synapse host and token come from, resolved the way the ``synapse`` CLI does it.

Order: explicit values, then ``SYNAPSE_HOST`` / ``SYNAPSE_ACCESS_TOKEN`` / ``SYNAPSE_TENANT``, then
``~/.synapse/config.json`` (written by ``synapse login``). The token is registered for redaction the
moment it is read and never appears in reprs, logs or metadata.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from synapse_dagster.core.redaction import register_secret

DEFAULT_CONFIG_FILE = "~/.synapse/config.json"


class SynapseConfigError(ValueError):
    """Synapse cannot be reached as configured; the message says which setting to fix."""


@dataclass(frozen=True)
class SynapseCredentials:
    host: str
    access_token: str = field(repr=False)
    tenant: str | None = None
    origin: str = field(default="", compare=False)  # where host and token came from, for ``doctor``

    @property
    def target(self) -> str:
        """A stable, secret-free identity of the Synapse deployment (keys the ingestion ledger)."""
        host = self.host.rstrip("/")
        return f"{host}#tenant={self.tenant}" if self.tenant else host


def resolve_credentials(
    host: str | None = None,
    access_token: str | None = None,
    tenant: str | None = None,
    config_file: str = DEFAULT_CONFIG_FILE,
) -> SynapseCredentials:
    file_values: dict[str, str] = {}
    path = Path(config_file).expanduser()
    origin = _origin(host, access_token, path)
    host = host or os.environ.get("SYNAPSE_HOST")
    access_token = access_token or os.environ.get("SYNAPSE_ACCESS_TOKEN")
    tenant = tenant or os.environ.get("SYNAPSE_TENANT")
    if (not host or not access_token) and path.is_file():
        try:
            file_values = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise SynapseConfigError(f"{path} is not readable JSON ({type(exc).__name__}); run 'synapse login' again") from None
        if not isinstance(file_values, dict):
            raise SynapseConfigError(f"{path} must hold a JSON object with 'host' and 'access_token'")
    host = host or file_values.get("host")
    access_token = access_token or file_values.get("access_token")
    tenant = tenant or file_values.get("tenant")
    register_secret(access_token)
    if not host:
        raise SynapseConfigError(
            "no Synapse host configured: set SYNAPSE_HOST (and SYNAPSE_ACCESS_TOKEN), or run 'synapse login' "
            f"to write {DEFAULT_CONFIG_FILE}"
        )
    if not host.startswith(("http://", "https://")):
        raise SynapseConfigError(f"Synapse host '{host}' must start with http:// or https:// (SYNAPSE_HOST)")
    if not access_token:
        raise SynapseConfigError(
            f"no Synapse access token for {host}: set SYNAPSE_ACCESS_TOKEN or run 'synapse login'"
        )
    return SynapseCredentials(host=host.rstrip("/"), access_token=access_token, tenant=tenant or None, origin=origin)


def _origin(host: str | None, access_token: str | None, path: Path) -> str:
    """``the environment``, the config file, or both when host and token come from different places."""
    def place(given: str | None, variable: str) -> str:
        return "the resource's settings" if given else "the environment" if os.environ.get(variable) else str(path)

    host_from, token_from = place(host, "SYNAPSE_HOST"), place(access_token, "SYNAPSE_ACCESS_TOKEN")
    return host_from if host_from == token_from else f"host from {host_from}, token from {token_from}"
