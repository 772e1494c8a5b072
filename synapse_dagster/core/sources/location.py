"""Where a source's files are: a parsed ``s3://``, ``gs://``, ``sftp://`` URL, a local folder, or a path inside a
Synapse storage.

A location is plain data (no connection), so it can be compared, logged and put in run metadata. File URIs are
built and split here by hand rather than with ``urllib``: object keys may contain ``#``, ``?`` or ``%``, which
a URL parser would take for a fragment, a query or an escape.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from synapse_dagster.core.sources.files import SourceError
from synapse_dagster.core.redaction import redact
from synapse_dagster.core.sources.options import ConnectionOptions

SCHEMES = {"s3": "s3", "gs": "gcs", "gcs": "gcs", "sftp": "sftp", "file": "local"}
URI_SCHEME = {"s3": "s3", "gcs": "gs", "sftp": "sftp"}
DEFAULT_SFTP_PORT = 22

# Synapse storage providers (backend codes and SDK aliases) → our scheme.
PROVIDERS = {
    "s3": "s3",
    "amazon_s3": "s3",
    "minio": "s3",
    "gcs": "gcs",
    "gcp": "gcs",
    "gs": "gcs",
    "sftp": "sftp",
    "file_system": "local",
    "local": "local",
}


@dataclass(frozen=True, slots=True)
class SourceLocation:
    """A folder to list. ``path`` is a key prefix ('' or ending in '/') for s3/gcs, an absolute path otherwise."""

    scheme: str  # "local" | "s3" | "gcs" | "sftp"
    bucket: str = ""  # the bucket (s3, gcs) or the host (sftp); '' for local
    path: str = ""
    port: int | None = None  # sftp only (22 unless the URL says otherwise)
    user: str | None = None  # sftp only: the login from the URL or storage config

    @property
    def host(self) -> str:
        return self.bucket

    @property
    def uri(self) -> str:
        """The folder as a URL (a plain path for local folders): what messages and metadata show."""
        return self.file_uri("")

    def file_uri(self, key_or_path: str) -> str:
        """The URI of an object key (s3/gcs) or an absolute path (sftp/local) in this location's store."""
        if self.scheme == "local":
            return key_or_path or self.path
        if self.scheme == "sftp":
            path = key_or_path or self.path
            user = f"{self.user}@" if self.user else ""
            port = f":{self.port}" if self.port != DEFAULT_SFTP_PORT else ""
            return f"sftp://{user}{_bracket(self.bucket)}{port}{path}"
        return f"{URI_SCHEME[self.scheme]}://{self.bucket}/{key_or_path or self.path}"

    def child(self, name: str) -> SourceLocation:
        """The sub-folder ``name`` (e.g. one batch folder below a watched prefix)."""
        if not name or "/" in name.strip("/"):
            raise ValueError(f"not a single folder name: {name!r}")
        name = name.strip("/")
        if self.scheme in ("s3", "gcs"):
            return replace(self, path=f"{self.path}{name}/")
        return replace(
            self, path=posixpath.join(self.path, name) if self.scheme == "sftp" else str(Path(self.path, name))
        )


_URL_PASSWORD = re.compile(r"(://[^/:@]*):[^/@]*@")


def _shown(text: str) -> str:
    """``text`` fit for a message: a password in a URL's user info and every known secret masked."""
    return redact(_URL_PASSWORD.sub(r"\1:***@", text))


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def parse_source(text: str) -> SourceLocation:
    """Parse 's3://bucket/prefix', 'gs://bucket/prefix', 'sftp://user@host:port/path', 'file:///p' or '/abs/path'.

    A path without scheme and without a leading '/' is relative to a Synapse storage: use
    :func:`resolve_storage_path` for it.
    """
    text = text.strip()
    if "://" not in text:
        if text.startswith(("/", "~")):
            return SourceLocation("local", path=str(Path(text).expanduser()))
        raise SourceError(
            f"source '{_shown(text)}' is relative: give a storage to resolve it against, or use an absolute path "
            "or a URL (s3://bucket/prefix, gs://bucket/prefix, sftp://user@host/path)"
        )
    scheme, netloc, path = split_uri(text)
    if scheme == "local":
        return SourceLocation("local", path=path or "/")
    if scheme == "sftp":
        user, host, port = sftp_netloc(netloc, text)
        return SourceLocation("sftp", host, _folder_path(path), port, user)
    if not netloc:
        raise SourceError(f"source '{_shown(text)}' names no bucket; write it as {URI_SCHEME[scheme]}://bucket/prefix")
    return SourceLocation(scheme, netloc, _key_prefix(path))


def split_uri(uri: str) -> tuple[str, str, str]:
    """``(scheme, netloc, path)`` of a source or file URI; ``path`` keeps its leading '/' only for sftp/local."""
    raw_scheme, _, rest = uri.partition("://")
    scheme = SCHEMES.get(raw_scheme.lower())
    if scheme is None:
        raise SourceError(
            f"source '{_shown(uri)}': '{raw_scheme}://' is not supported; use s3://, gs://, sftp:// or a local path"
        )
    netloc, slash, path = rest.partition("/")
    if scheme in ("sftp", "local"):
        return scheme, netloc, f"/{path}" if slash else "/"
    return scheme, netloc, path


def sftp_netloc(netloc: str, text: str) -> tuple[str | None, str, int]:
    """``(user, host, port)`` of an sftp URL's netloc; a password in it is refused, never echoed."""
    userinfo, at, hostport = netloc.rpartition("@")
    if not at:
        userinfo, hostport = "", netloc
    if ":" in userinfo:
        raise SourceError(
            f"source '{_shown(text)}' has a password in the URL; "
            "put it in SFTP_PASSWORD (or the storage config) instead"
        )
    if hostport.startswith("["):
        host, _, port_text = hostport[1:].partition("]")
        port_text = port_text.removeprefix(":")
    else:
        host, _, port_text = hostport.partition(":")
    if not host:
        raise SourceError(f"source '{_shown(text)}' names no host; write it as sftp://user@host:port/path")
    try:
        port = int(port_text) if port_text else None
    except ValueError:
        raise SourceError(f"source '{_shown(text)}': port '{port_text}' is not a number") from None
    return userinfo or None, host, port or DEFAULT_SFTP_PORT


def _key_prefix(path: str) -> str:
    path = path.strip("/")
    return f"{path}/" if path else ""


def _folder_path(path: str) -> str:
    normalized = posixpath.normpath(path or "/")
    return "/" if normalized in ("/", "//") else normalized


def resolve_storage_path(
    path: str, storage: Mapping[str, Any], options: ConnectionOptions | None = None
) -> tuple[SourceLocation, ConnectionOptions]:
    """Resolve ``path`` inside a Synapse storage (``BackendClient.get_storage(id).model_dump()`` or its
    ``{"provider", "configuration"}`` part) to a location plus the options to reach it.

    Values from the storage config override ``options`` (default: from the environment); what the config
    leaves out, such as a GCS emulator host, still comes from ``options``.
    """
    provider = str(storage.get("provider") or "").lower()
    config = dict(storage.get("configuration") or {})
    name = storage.get("name") or storage.get("id") or provider
    scheme = PROVIDERS.get(provider)
    if scheme is None:
        raise SourceError(
            f"storage '{name}': provider '{provider}' cannot be listed here; supported: {', '.join(sorted(PROVIDERS))}"
        )
    base = options or ConnectionOptions.from_env()
    relative = path.strip().lstrip("/")

    def need(key: str) -> Any:
        value = config.get(key)
        if value in (None, ""):
            raise SourceError(
                f"storage '{name}' ({provider}): configuration has no '{key}'; fix the storage in Synapse"
            )
        return value

    if scheme == "local":
        return SourceLocation("local", path=str(Path(need("location"), relative))), base
    if scheme == "s3":
        resolved = base.with_values(
            access_key=config.get("access_key"),
            secret_key=config.get("secret_key"),
            region=config.get("region_name"),
            endpoint_url=config.get("endpoint_url"),
        )
        return SourceLocation("s3", need("bucket_name"), _key_prefix(relative)), resolved
    if scheme == "gcs":
        resolved = base.with_values(gcs_token=config.get("credentials"), gcs_project=config.get("project"))
        return SourceLocation("gcs", need("bucket_name"), _key_prefix(relative)), resolved
    root = str(config.get("root_path") or "/")
    resolved = base.with_values(
        sftp_username=need("username"),
        sftp_password=config.get("password"),
        sftp_key_file=config.get("private_key"),
        sftp_key_passphrase=config.get("private_key_passphrase"),
    )
    port = int(config.get("port") or DEFAULT_SFTP_PORT)
    path = _folder_path(posixpath.join("/", root, relative))
    location = SourceLocation("sftp", need("host"), path, port, resolved.sftp_username)
    return location, resolved
