"""How to reach a remote source: endpoints, credentials and timeouts, kept apart from *where* the files are.

Credentials come from the environment by default (the variables each cloud's own tools read), so they never
have to be written into a pipeline file or Dagster run config. Every secret is registered with
:mod:`~synapse_dagster.core.redaction` the moment an options object exists, and secret fields are left out
of ``repr``, so neither an error message nor a log line can show one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from synapse_dagster.core.redaction import register_secret

HOST_KEY_POLICIES = ("strict", "accept-any")


@dataclass(slots=True)
class ConnectionOptions:
    """Connection settings for S3 (and S3-compatible stores), GCS, SFTP and Azure Blob Storage sources."""

    # S3 and S3-compatible stores (MinIO, SeaweedFS, ...): endpoint_url=None means AWS itself.
    endpoint_url: str | None = None
    region: str | None = None
    access_key: str | None = field(default=None, repr=False)
    secret_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)
    # GCS: gcs_endpoint is an emulator or private endpoint; gcs_token is a key file path, its content (dict
    # or text), "anon" or "google_default"; None means Application Default Credentials, which read
    # GOOGLE_APPLICATION_CREDENTIALS themselves (anonymous when gcs_endpoint is set).
    gcs_endpoint: str | None = None
    gcs_token: str | dict[str, Any] | None = field(default=None, repr=False)
    gcs_project: str | None = None
    # SFTP: the user from an sftp://user@host URL wins over sftp_username.
    sftp_username: str | None = None
    sftp_password: str | None = field(default=None, repr=False)
    sftp_key_file: str | None = None
    sftp_key_passphrase: str | None = field(default=None, repr=False)
    sftp_known_hosts: str | None = None  # a known_hosts file; None means ~/.ssh/known_hosts
    sftp_host_key_policy: str = "strict"  # or "accept-any" (no host key check: tests and trusted networks only)
    # Azure Blob Storage: a connection string, or the account name with a key or SAS token (neither: the account's
    # DefaultAzureCredential). azure_endpoint is the account's blob endpoint when it is not
    # https://<account>.blob.core.windows.net (Azurite, sovereign clouds, private endpoints).
    azure_account_name: str | None = None
    azure_account_key: str | None = field(default=None, repr=False)
    azure_connection_string: str | None = field(default=None, repr=False)
    azure_sas_token: str | None = field(default=None, repr=False)
    azure_endpoint: str | None = None
    # Local folders: follow a symbolic link only when it stays inside the source ("within_root"), never, or always.
    follow_symlinks: str = "within_root"
    # Short connect timeouts so a wrong host or port fails in seconds, not minutes.
    connect_timeout: float = 5.0
    read_timeout: float = 60.0
    max_attempts: int = 3  # per request, for transient errors while listing or copying

    def __post_init__(self) -> None:
        if self.sftp_host_key_policy not in HOST_KEY_POLICIES:
            raise ValueError(
                f"sftp_host_key_policy must be one of {HOST_KEY_POLICIES}, not {self.sftp_host_key_policy!r}"
            )
        for secret in (
            self.access_key,
            self.secret_key,
            self.session_token,
            self.sftp_password,
            self.sftp_key_passphrase,
            self.azure_account_key,
            self.azure_connection_string,
            self.azure_sas_token,
            *_connection_string_secrets(self.azure_connection_string),
        ):
            register_secret(secret)
        if isinstance(self.gcs_token, str) and self.gcs_token.lstrip().startswith("{"):
            register_secret(self.gcs_token)
            self.gcs_token = json.loads(self.gcs_token)  # key file content pasted as text
        if isinstance(self.gcs_token, dict):
            for key in ("private_key", "private_key_id", "client_secret", "refresh_token"):
                value = self.gcs_token.get(key)
                register_secret(value if isinstance(value, str) else None)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> ConnectionOptions:
        """Options from the standard variables (AWS_*, STORAGE_EMULATOR_HOST, GOOGLE_CLOUD_PROJECT, SFTP_*,
        AZURE_STORAGE_*), then ``overrides``. GOOGLE_APPLICATION_CREDENTIALS is read by Application Default
        Credentials when needed. Azure takes the Azure CLI's names first, then adlfs's (…_ACCOUNT_NAME/_KEY)."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {
            "endpoint_url": env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL") or None,
            "region": env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None,
            "access_key": env.get("AWS_ACCESS_KEY_ID") or None,
            "secret_key": env.get("AWS_SECRET_ACCESS_KEY") or None,
            "session_token": env.get("AWS_SESSION_TOKEN") or None,
            "gcs_endpoint": _emulator_url(env.get("STORAGE_EMULATOR_HOST")),
            "gcs_project": env.get("GOOGLE_CLOUD_PROJECT") or env.get("GCLOUD_PROJECT") or None,
            "sftp_username": env.get("SFTP_USERNAME") or None,
            "sftp_password": env.get("SFTP_PASSWORD") or None,
            "sftp_key_file": env.get("SFTP_PRIVATE_KEY") or None,
            "sftp_key_passphrase": env.get("SFTP_PRIVATE_KEY_PASSPHRASE") or None,
            "sftp_known_hosts": env.get("SFTP_KNOWN_HOSTS") or None,
            "sftp_host_key_policy": env.get("SFTP_HOST_KEY_POLICY") or "strict",
            "azure_account_name": env.get("AZURE_STORAGE_ACCOUNT") or env.get("AZURE_STORAGE_ACCOUNT_NAME") or None,
            "azure_account_key": env.get("AZURE_STORAGE_KEY") or env.get("AZURE_STORAGE_ACCOUNT_KEY") or None,
            "azure_connection_string": env.get("AZURE_STORAGE_CONNECTION_STRING") or None,
            "azure_sas_token": env.get("AZURE_STORAGE_SAS_TOKEN") or None,
        }
        values.update(overrides)
        return cls(**values)

    def with_values(self, **changes: Any) -> ConnectionOptions:
        """A copy with some fields replaced (``None`` values are ignored, so config gaps keep the env defaults)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


def _connection_string_secrets(text: str | None) -> list[str]:
    """The key and SAS inside an Azure connection string: an SDK error may quote one without the rest."""
    secrets = []
    for part in (text or "").split(";"):
        name, _, value = part.partition("=")
        if name.strip().lower() in ("accountkey", "sharedaccesssignature") and value.strip():
            secrets.append(value.strip())
    return secrets


def _emulator_url(host: str | None) -> str | None:
    if not host:
        return None
    return host if "://" in host else f"http://{host}"
