"""Where a source's files are: a parsed source URL (``s3://``, ``gs://``, ``sftp://`` …) or a local folder.

A location is plain data (no connection), so it can be compared, logged and put in run metadata. How a URL
addresses files comes from the provider's row in :mod:`.registry`: a local path, a bucket plus key prefix, or
a host plus absolute path. URIs are built and split here by hand rather than with ``urllib``: object keys may
contain ``#``, ``?`` or ``%``, which a URL parser would take for a fragment, a query or an escape.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, replace
from pathlib import Path

from synapse_dagster.core.redaction import redact
from synapse_dagster.core.sources import registry
from synapse_dagster.core.sources.files import SourceError


@dataclass(frozen=True, slots=True)
class SourceLocation:
    """A folder to list. ``path`` is a key prefix ('' or ending in '/') in a bucket, an absolute path otherwise."""

    scheme: str  # a registry scheme: "local", "s3", "gcs", "sftp", …
    bucket: str = ""  # the bucket or container, or the host; '' for local
    path: str = ""
    port: int | None = None  # host addressing only
    user: str | None = None  # host addressing only: the login from the URL or storage config

    @property
    def provider(self) -> registry.Provider:
        return registry.provider(self.scheme)

    @property
    def is_local(self) -> bool:
        return self.provider.addressing == "path"

    @property
    def host(self) -> str:
        return self.bucket

    @property
    def uri(self) -> str:
        """The folder as a URL (a plain path for local folders): what messages and metadata show."""
        return self.file_uri("")

    def file_uri(self, key_or_path: str) -> str:
        """The URI of an object key (bucket addressing) or an absolute path (host and path addressing)."""
        provider = self.provider
        if provider.addressing == "path":
            return key_or_path or self.path
        if provider.addressing == "host":
            user = f"{self.user}@" if self.user else ""
            port = f":{self.port}" if self.port not in (None, provider.default_port) else ""
            return f"{provider.uri_scheme}://{user}{_bracket(self.bucket)}{port}{key_or_path or self.path}"
        return f"{provider.uri_scheme}://{self.bucket}/{key_or_path or self.path}"

    def key_of(self, uri: str) -> str:
        """What the store reads for a file URI of this location: its key (buckets) or absolute path."""
        if self.is_local:
            return uri
        return split_uri(uri)[2]

    def child(self, name: str) -> SourceLocation:
        """The sub-folder ``name`` (e.g. one batch folder below a watched prefix)."""
        if not name or "/" in name.strip("/"):
            raise ValueError(f"not a single folder name: {name!r}")
        name = name.strip("/")
        addressing = self.provider.addressing
        if addressing == "bucket":
            return replace(self, path=f"{self.path}{name}/")
        return replace(self, path=posixpath.join(self.path, name) if addressing == "host" else str(Path(self.path, name)))

    def container(self) -> SourceLocation:
        """The bucket (or host) itself: one connection serves every file in it."""
        return replace(self, path="/" if self.provider.addressing == "host" else "")


_URL_PASSWORD = re.compile(r"(://[^/:@]*):[^/@]*@")


def shown(text: str) -> str:
    """``text`` fit for a message: a password in a URL's user info and every known secret masked."""
    return redact(_URL_PASSWORD.sub(r"\1:***@", text))


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def is_url(text: str) -> bool:
    return "://" in text


def parse_source(text: str) -> SourceLocation:
    """Parse a source URL ('s3://bucket/prefix', 'sftp://user@host:port/path', 'file:///p') or an absolute path.

    A path without scheme and without a leading '/' is relative: to the pipeline file, or to a Synapse storage
    (see :mod:`.roots`).
    """
    text = text.strip()
    if not is_url(text):
        if text.startswith(("/", "~")):
            return SourceLocation("local", path=str(Path(text).expanduser()))
        raise SourceError(
            f"source '{shown(text)}' is relative: give a storage to resolve it against, or use an absolute path "
            f"or a URL ({', '.join(registry.url_schemes())})"
        )
    scheme, netloc, path = split_uri(text)
    provider = registry.provider(scheme)
    if provider.addressing == "path":
        return SourceLocation(scheme, path=path or "/")
    if provider.addressing == "host":
        user, host, port = host_netloc(netloc, text, provider)
        return SourceLocation(scheme, host, folder_path(path), port, user)
    if not netloc:
        raise SourceError(f"source '{shown(text)}' names no bucket; write it as {provider.uri_scheme}://bucket/prefix")
    return SourceLocation(scheme, netloc, key_prefix(path))


def split_uri(uri: str) -> tuple[str, str, str]:
    """``(scheme, netloc, path)`` of a source or file URI; ``path`` keeps its leading '/' only for host/path
    addressing."""
    raw_scheme, _, rest = uri.partition("://")
    provider = registry.for_url_scheme(raw_scheme)
    if provider is None:
        raise SourceError(
            f"source '{shown(uri)}': '{raw_scheme}://' is not supported; use {', '.join(registry.url_schemes())} "
            "or a local path"
        )
    netloc, slash, path = rest.partition("/")
    if provider.addressing in ("host", "path"):
        return provider.scheme, netloc, f"/{path}" if slash else "/"
    return provider.scheme, netloc, path


def host_netloc(netloc: str, text: str, provider: registry.Provider) -> tuple[str | None, str, int | None]:
    """``(user, host, port)`` of a URL's netloc; a password in it is refused, never echoed."""
    userinfo, at, hostport = netloc.rpartition("@")
    if not at:
        userinfo, hostport = "", netloc
    if ":" in userinfo:
        raise SourceError(
            f"source '{shown(text)}' has a password in the URL; put it in the environment "
            f"({provider.scheme.upper()}_PASSWORD) or the storage config instead"
        )
    if hostport.startswith("["):
        host, _, port_text = hostport[1:].partition("]")
        port_text = port_text.removeprefix(":")
    else:
        host, _, port_text = hostport.partition(":")
    if not host:
        raise SourceError(f"source '{shown(text)}' names no host; write it as {provider.uri_scheme}://user@host:port/path")
    try:
        port = int(port_text) if port_text else None
    except ValueError:
        raise SourceError(f"source '{shown(text)}': port '{port_text}' is not a number") from None
    return userinfo or None, host, port or provider.default_port


def key_prefix(path: str) -> str:
    path = path.strip("/")
    return f"{path}/" if path else ""


def folder_path(path: str) -> str:
    normalized = posixpath.normpath(path or "/")
    return "/" if normalized in ("/", "//") else normalized
