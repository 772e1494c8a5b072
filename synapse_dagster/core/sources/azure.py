"""Azure Blob Storage through universal-pathlib: ``UPath("az://")`` resolves to adlfs's AzureBlobFileSystem, which
the generic :class:`~.upath_store.UPathStore` walks. This module only says how to reach an account and how to word
its errors.

Synapse's storage provider code is ``azure``. The SDK lists it among its providers (``StorageProvider.AZURE``), yet
its ``get_pathlib`` cannot resolve it (its StorageConfig refuses the code), so a storage-relative path in an Azure
storage is resolved here, from the storage's configuration.

Two things are not left to adlfs 2026.8:

* its client takes no retry or timeout settings (the SDK's defaults back off 15 s and more between retries, and
  wait 60 s on a silent server), so the client it made is swapped for one built with ours: a check fails in seconds;
* its ``ls`` also lists every sibling that shares the folder's name as a prefix (listing ``b1`` walks ``b10/``,
  ``b11/`` …) and, when a zero-byte ``folder/`` placeholder blob exists, returns the placeholder instead of the
  folder's content. Folders are listed with one delimited ``walk_blobs`` each instead.

Only ``az://container/prefix`` is accepted: ``abfs[s]://`` URLs are written ``container@account.dfs.core.windows.net``
in the Hadoop form, which carries the account in the URL, and bucket addressing here has no place for it.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import ipaddress
import os
import threading
from collections.abc import Mapping
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

from azure.core.credentials import AzureSasCredential
from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.storage.blob.aio import BlobPrefix, BlobServiceClient
from fsspec import AbstractFileSystem
from fsspec.asyn import sync
from upath import UPath

from synapse_dagster.core.redaction import redact
from synapse_dagster.core.sources.files import SourceError
from synapse_dagster.core.sources.location import SourceLocation, key_prefix
from synapse_dagster.core.sources.options import ConnectionOptions
from synapse_dagster.core.sources.upath_store import Hooks, Info, UPathStore

CHECK_READ_TIMEOUT = 15.0
_FOLDER_FLAGS = ("hdi_isfolder", "is_directory")  # metadata of ADLS and adlfs directory marker blobs
_lock = threading.Lock()
_roots: dict[str, UPath] = {}


def connect(location: SourceLocation, options: ConnectionOptions, *, checking: bool = False) -> UPathStore:
    where = _where(options)
    explain = functools.partial(_explain, options, where)
    return UPathStore(_root(options, checking), Hooks(explain, where, "container", _list_folder))


def from_storage(config: Mapping[str, Any], relative: str, options: ConnectionOptions, need) -> tuple[SourceLocation, ConnectionOptions]:
    """A Synapse Azure storage: container_name (or bucket_name), account_name and one of account_key, sas_token or
    connection_string; endpoint_url for Azurite or another cloud. Credentials given here replace all those from
    the environment, so an AZURE_STORAGE_KEY meant for another account never mixes in."""
    container = config.get("container_name") or config.get("bucket_name") or need("container_name")
    given = {
        "azure_account_key": config.get("account_key") or None,
        "azure_connection_string": config.get("connection_string") or None,
        "azure_sas_token": config.get("sas_token") or None,
    }
    if any(given.values()):
        options = replace(options, **given)
    resolved = options.with_values(azure_account_name=config.get("account_name") or None,
                                   azure_endpoint=config.get("endpoint_url") or None)
    return SourceLocation("azure", str(container), key_prefix(relative)), resolved


def _root(options: ConnectionOptions, checking: bool) -> UPath:
    """One filesystem per process and settings, kept like fsspec keeps its instances: its connection pool serves
    every store opened with the same settings (a sensor opens one per tick), and adlfs filesystems are never freed
    before exit anyway (a finalizer holds each one)."""
    settings = (os.getpid(), checking, options.azure_account_name, options.azure_account_key,
                options.azure_connection_string, options.azure_sas_token, options.azure_endpoint,
                options.connect_timeout, options.read_timeout, options.max_attempts)
    key = hashlib.sha256(repr(settings).encode()).hexdigest()
    with _lock:
        if key not in _roots:
            client = _client(options, checking)
            root = UPath("az://", **_storage_options(options, client))
            root.fs.service_client = client  # adlfs has no way to pass retry and timeout settings to its own
            _roots[key] = root
        return _roots[key]


def _client(options: ConnectionOptions, checking: bool) -> BlobServiceClient:
    """The account's client: one try and a short read timeout when checking, else a few quick retries."""
    tuning: dict[str, Any] = {
        "retry_total": 0 if checking else max(options.max_attempts - 1, 0),
        "initial_backoff": 1,
        "increment_base": 2,
        "random_jitter_range": 1,
        "connection_timeout": options.connect_timeout,
        "read_timeout": min(options.read_timeout, CHECK_READ_TIMEOUT) if checking else options.read_timeout,
    }
    if options.azure_connection_string:
        try:
            return BlobServiceClient.from_connection_string(options.azure_connection_string, **tuning)
        except ValueError:
            raise SourceError(
                "the Azure connection string is malformed (expected 'AccountName=…;AccountKey=…;' or "
                "'BlobEndpoint=…;SharedAccessSignature=…'); check AZURE_STORAGE_CONNECTION_STRING or the storage's "
                "connection_string"
            ) from None
    account = _account_name(options)
    if options.azure_account_key:
        credential: Any = {"account_name": account, "account_key": options.azure_account_key}
    elif options.azure_sas_token:
        credential = AzureSasCredential(options.azure_sas_token.lstrip("?"))
    else:
        from azure.identity.aio import DefaultAzureCredential  # managed identity, az login, AZURE_CLIENT_* …

        credential = DefaultAzureCredential()
    return BlobServiceClient(_account_url(options), credential=credential, **tuning)


def _storage_options(options: ConnectionOptions, client: BlobServiceClient) -> dict[str, Any]:
    """What adlfs needs to build its filesystem; its own client is replaced, so it only must not fail or go
    looking for credentials of its own."""
    common = {"skip_instance_cache": True, "use_listings_cache": False, "assume_container_exists": False}
    if options.azure_connection_string:
        return {**common, "connection_string": options.azure_connection_string}
    credential = client.credential
    return {**common, "account_name": _account_name(options),
            **({"credential": credential} if credential is not None else {"anon": True})}


def _account_name(options: ConnectionOptions) -> str:
    if options.azure_account_name:
        return options.azure_account_name
    if options.azure_endpoint:  # https://<account>.blob.…, or http://127.0.0.1:10000/<account> (Azurite)
        parts = urlsplit(options.azure_endpoint)
        host = parts.hostname or ""
        name = parts.path.strip("/").split("/")[0] if _is_ip_or_localhost(host) else host.split(".")[0]
        if name:
            return name
    raise SourceError(
        "no Azure account given; set AZURE_STORAGE_ACCOUNT with AZURE_STORAGE_KEY or AZURE_STORAGE_SAS_TOKEN, or "
        "AZURE_STORAGE_CONNECTION_STRING (in a storage: account_name with account_key or sas_token, or "
        "connection_string; in a pipeline: connection.azure_account_name)"
    )


def _is_ip_or_localhost(host: str) -> bool:
    """Such endpoints carry the account in the path (Azurite's path-style URLs), not in the host name."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return host == "localhost"
    return True


def _account_url(options: ConnectionOptions) -> str:
    return (options.azure_endpoint or f"https://{_account_name(options)}.blob.core.windows.net").rstrip("/")


def _endpoint(options: ConnectionOptions) -> str | None:
    """The blob endpoint other than Azure's public one (azure_endpoint, or a connection string's BlobEndpoint),
    without any query: a SAS may ride in an endpoint URL."""
    endpoint = options.azure_endpoint
    for part in (options.azure_connection_string or "").split(";"):
        name, _, value = part.partition("=")
        if name.strip().lower() == "blobendpoint" and not endpoint:
            endpoint = value.strip()
    return redact(endpoint.split("?")[0].rstrip("/")) if endpoint else None


def _target(options: ConnectionOptions) -> str:
    """The endpoint requests go to, for 'cannot reach' messages."""
    parts = dict(p.strip().partition("=")[::2] for p in (options.azure_connection_string or "").split(";") if p.strip())
    parts = {k.lower(): v for k, v in parts.items()}
    account = options.azure_account_name or parts.get("accountname", "?")
    return _endpoint(options) or f"https://{account}.blob.{parts.get('endpointsuffix', 'core.windows.net')}"


def _where(options: ConnectionOptions) -> str:
    endpoint = _endpoint(options)
    return f" at {endpoint}" if endpoint else ""


def _list_folder(fs: AbstractFileSystem, path: str) -> list[Info]:
    """One folder as fsspec info dicts, from one delimited listing (see the module docstring for why not ``ls``)."""
    container, _, folder = path.partition("/")
    return sync(fs.loop, _walk_one_level, fs.service_client, container, f"{folder}/" if folder else None)


async def _walk_one_level(service: BlobServiceClient, container: str, prefix: str | None) -> list[Info]:
    client = service.get_container_client(container)
    infos: list[Info] = []
    try:
        async for item in client.walk_blobs(name_starts_with=prefix, include=["metadata"], delimiter="/"):
            infos.append(_info(container, item))
    except ResourceNotFoundError as exc:
        if _code(exc) != "ContainerNotFound":
            raise
        raise FileNotFoundError(errno.ENOENT, "no such container", container) from None
    return infos


def _info(container: str, item: Any) -> Info:
    name = f"{container}/{item.name}"
    if isinstance(item, BlobPrefix):
        return {"name": name, "type": "directory", "size": 0}
    metadata = {str(k).lower(): str(v).lower() for k, v in (item.metadata or {}).items()}
    is_folder = any(metadata.get(flag) == "true" for flag in _FOLDER_FLAGS)
    return {"name": name, "type": "directory" if is_folder else "file", "size": item.size,
            "last_modified": item.last_modified, "content_settings": item.content_settings, "etag": item.etag}


def _code(exc: HttpResponseError) -> str:
    code = exc.error_code
    return str(getattr(code, "value", code) or "")


def _explain(options: ConnectionOptions, where: str, exc: BaseException, location: SourceLocation, reading: bool) -> str | None:
    """A person's message for an Azure SDK error; None for anything else. Never the server's text verbatim
    beyond its one-line reason, and never a credential."""
    if isinstance(exc, ValueError) and isinstance(exc.__cause__, AzureError):
        exc = exc.__cause__  # adlfs wraps some SDK errors in a ValueError
    if not isinstance(exc, AzureError):
        return None
    uri = location.uri
    if isinstance(exc, ClientAuthenticationError) and exc.status_code is None:
        # Failed before any request: a key that is not base64, or no credential DefaultAzureCredential could find.
        if options.azure_account_key or "accountkey=" in (options.azure_connection_string or "").lower():
            return (f"{uri}: the account key is not a valid Azure key (base64 text); check AZURE_STORAGE_KEY or the "
                    "storage's account_key")
        return (f"{uri}: no usable Azure credentials ({type(exc).__name__}); set AZURE_STORAGE_KEY, "
                "AZURE_STORAGE_SAS_TOKEN or AZURE_STORAGE_CONNECTION_STRING (or account_key, sas_token or "
                "connection_string in the storage), or sign in so DefaultAzureCredential finds an identity")
    if isinstance(exc, ServiceRequestError | ServiceResponseError):
        return (f"{uri}: cannot reach {_target(options)} ({type(exc).__name__}); check the account name and endpoint "
                "(azure_endpoint, or the storage's endpoint_url) and that the server is up and answering")
    if isinstance(exc, HttpResponseError):
        return _explain_response(options, where, exc, location, reading)
    return f"{uri}{where}: {type(exc).__name__}"


def _explain_response(options: ConnectionOptions, where: str, exc: HttpResponseError, location: SourceLocation,
                      reading: bool) -> str:
    uri, code = location.uri, _code(exc)
    if code == "ContainerNotFound":
        return f"{uri}: container '{location.bucket}' does not exist{where}; check the container name and endpoint"
    if code == "BlobNotFound" or (reading and exc.status_code == 404):
        return f"{uri}: the object no longer exists{where} (deleted since it was listed?); re-run the batch"
    if exc.status_code == 404:
        return (f"{uri}: account '{options.azure_account_name or '?'}' was not found{where}; check the account name "
                "and endpoint")
    if code in ("ConditionNotMet", "412"):
        return f"{uri}: the object changed since it was listed{where}; re-run the batch to pick up the new version"
    if code in ("AuthenticationFailed", "AuthorizationFailure", "InvalidAuthenticationInfo"):
        what, fix = _rejected(options)
        return f"{uri}: {what}{where}; {fix}"
    if exc.status_code == 403:
        return (f"{uri}: access denied{where} ({code or 403}); the credentials need List and Read permission on the "
                "container")
    if code in ("InvalidResourceName", "OutOfRangeInput"):
        return (f"{uri}: '{location.bucket}' is not a valid container name (3-63 lowercase letters, digits and "
                "single hyphens)")
    return f"{uri}{where}: {code or exc.status_code or 'error'}: {exc.reason or type(exc).__name__}"


def _rejected(options: ConnectionOptions) -> tuple[str, str]:
    """What the service refused and what to fix, by which credential was sent."""
    if options.azure_connection_string:
        return ("the connection string's credentials were rejected",
                "check AZURE_STORAGE_CONNECTION_STRING or the storage's connection_string")
    if options.azure_account_key:
        return (f"the account key was rejected (not a key of account '{_account_name(options)}'?)",
                "check AZURE_STORAGE_KEY or the storage's account_key")
    if options.azure_sas_token:
        return ("the SAS token was rejected (expired, or not issued for this account or container)",
                "check AZURE_STORAGE_SAS_TOKEN or the storage's sas_token")
    return ("the request was refused (DefaultAzureCredential's identity has no access, or the container is not "
            "public)", "give an account key or SAS token")
