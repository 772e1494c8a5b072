"""Which back end serves a source: one row per provider, the only table a new source type is added to.

A row names the URL schemes a pipeline file may write, how such a URL addresses files (a local path, a bucket
and key prefix, or a host and absolute path), the Synapse storage provider codes that mean it, and the module
that implements it. Modules are imported on first use, so listing a local folder never loads botocore or
google-cloud-storage. Each provider module offers::

    connect(location, options, *, checking) -> Store      # one open connection (see store.Store)
    from_storage(config, relative, options) -> (location, options)   # a path inside a Synapse storage
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import Literal

Addressing = Literal["path", "bucket", "host"]


@dataclass(frozen=True)
class Provider:
    scheme: str  # the name locations carry: "local", "s3", "gcs", "sftp", "azure"
    url_schemes: tuple[str, ...]  # what a source URL may start with; the first is what URIs are written with
    addressing: Addressing
    storage_providers: tuple[str, ...]  # Synapse storage provider codes (and the SDK's aliases) meaning this
    module: str
    resumable: bool = False  # listings come in global key order and can resume after a key on the server
    default_port: int | None = None

    @property
    def uri_scheme(self) -> str:
        return self.url_schemes[0]

    def load(self) -> ModuleType:
        return importlib.import_module(self.module)


_PACKAGE = __name__.rsplit(".", 1)[0]
PROVIDERS: tuple[Provider, ...] = (
    Provider("local", ("file",), "path", ("local", "file_system"), f"{_PACKAGE}.local"),
    Provider("s3", ("s3",), "bucket", ("s3", "amazon_s3", "minio"), f"{_PACKAGE}.s3", resumable=True),
    Provider("gcs", ("gs", "gcs"), "bucket", ("gcs", "gcp", "gs"), f"{_PACKAGE}.gcs", resumable=True),
    Provider("sftp", ("sftp",), "host", ("sftp",), f"{_PACKAGE}.sftp", default_port=22),
    Provider("azure", ("az",), "bucket", ("azure",), f"{_PACKAGE}.azure"),
)

_BY_SCHEME = {p.scheme: p for p in PROVIDERS}
_BY_URL_SCHEME = {u: p for p in PROVIDERS for u in p.url_schemes}
_BY_STORAGE_PROVIDER = {code: p for p in PROVIDERS for code in p.storage_providers}


def provider(scheme: str) -> Provider:
    return _BY_SCHEME[scheme]


def for_url_scheme(url_scheme: str) -> Provider | None:
    return _BY_URL_SCHEME.get(url_scheme.lower())


def for_storage_provider(code: str) -> Provider | None:
    return _BY_STORAGE_PROVIDER.get(code.lower())


def url_schemes() -> list[str]:
    """Every URL scheme a source may use, as people write them (``s3://``, ``gs://`` …), for messages."""
    return [f"{u}://" for p in PROVIDERS for u in p.url_schemes if p.scheme != "local"]


def storage_provider_codes() -> list[str]:
    return sorted(_BY_STORAGE_PROVIDER)
