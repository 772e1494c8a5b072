"""Google Cloud Storage through google-cloud-storage: ``list_blobs`` pages streamed straight into records.

The plain client is used instead of gcsfs: gcsfs 2026.x probes every bucket over gRPC for its layout (60 s of
retries against an emulator unless GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT=false) and ``find`` builds the whole
listing in memory; ``list_blobs`` pages are fetched one ahead (:func:`~.store.read_ahead`), so a listing holds
two pages at a time. Records are made from each page's JSON items directly: a ``Blob`` per object and its
``strptime`` of the timestamp cost more than the rest of the listing.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import google.auth
import requests
from google.api_core import exceptions as gexc
from google.api_core.retry import Retry
from google.auth import exceptions as auth_exc
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage
from google.cloud._helpers import _rfc3339_nanos_to_datetime
from google.cloud.storage.retry import DEFAULT_RETRY
from google.oauth2 import credentials as user_credentials
from google.oauth2 import service_account

from synapse_dagster.core.sources.files import SourceError
from synapse_dagster.core.redaction import redact
from synapse_dagster.core.sources.location import SourceLocation, key_prefix
from synapse_dagster.core.sources.options import ConnectionOptions
from synapse_dagster.core.sources.store import CopySink, ListedFile, datetime_ns, read_ahead

PAGE_SIZE = 1000
CHECK_READ_TIMEOUT = 15.0
READ_ONLY = ["https://www.googleapis.com/auth/devstorage.read_only"]
_FILE_FIELDS = "items(name,size,updated,md5Hash,crc32c),prefixes,nextPageToken"
_PLAIN_RFC3339 = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?Z")


class GCSStore:
    def __init__(self, options: ConnectionOptions, *, checking: bool = False) -> None:
        self._options = options
        read_timeout = min(options.read_timeout, CHECK_READ_TIMEOUT) if checking else options.read_timeout
        self._timeout = (options.connect_timeout, read_timeout)
        # Checks fail fast; listing and copying retry transient errors for up to max_attempts read timeouts.
        self._retry: Retry | None = (
            None if checking else DEFAULT_RETRY.with_timeout(options.read_timeout * options.max_attempts)
        )
        self._where = f" at {options.gcs_endpoint}" if options.gcs_endpoint else ""
        try:
            credentials = _credentials(options)
        except (auth_exc.DefaultCredentialsError, OSError, ValueError) as exc:
            raise SourceError(
                redact(
                    f"GCS credentials could not be loaded ({exc}); give a service account key file (the storage's "
                    "'credentials') or set GOOGLE_APPLICATION_CREDENTIALS"
                )
            ) from None
        client_options = {"api_endpoint": options.gcs_endpoint} if options.gcs_endpoint else None
        self._client = storage.Client(
            project=options.gcs_project, credentials=credentials, client_options=client_options
        )

    def close(self) -> None:
        self._client.close()

    def check(self, location: SourceLocation, *, allow_empty: bool = False) -> None:
        with self._errors(location):
            blobs = self._client.list_blobs(
                location.bucket, prefix=location.path, max_results=1, timeout=self._timeout, retry=self._retry
            )
            if next(iter(blobs), None) is not None or allow_empty:
                return
        if not location.path:
            raise SourceError(f"{location.uri}{self._where}: the bucket is empty; nothing to list")
        raise SourceError(
            f"{location.uri}{self._where}: no objects under this prefix (missing, or an empty folder); check the path"
        )

    def iter_files(self, location: SourceLocation, *, recursive: bool, start_after: str | None = None) -> Iterator[ListedFile]:
        blobs = self._client.list_blobs(
            location.bucket,
            prefix=location.path,
            start_offset=f"{location.path}{start_after}" if start_after else None,
            delimiter=None if recursive else "/",
            page_size=PAGE_SIZE,
            fields=_FILE_FIELDS,
            timeout=self._timeout,
            retry=self._retry,
        )
        cut, folder_uri = len(location.path), location.uri  # every name starts with the prefix
        with self._errors(location):
            for page in read_ahead(iter(blobs.pages)):
                for item in page.raw_page.get("items", ()):
                    name = item.get("name")
                    relative = name[cut:]
                    if not relative or name.endswith("/") or (start_after is not None and relative <= start_after):
                        continue  # a zero-byte "folder" placeholder, or the resume point (start_offset is inclusive)
                    yield ListedFile(
                        relative,
                        folder_uri + relative,
                        int(item.get("size") or 0),
                        updated_ns(item.get("updated")),
                        _content_tag(item),
                    )

    def iter_subfolders(self, location: SourceLocation, *, start_after: str | None) -> Iterator[str]:
        blobs = self._client.list_blobs(
            location.bucket,
            prefix=location.path,
            delimiter="/",
            start_offset=f"{location.path}{start_after}" if start_after else None,
            page_size=PAGE_SIZE,
            fields="prefixes,nextPageToken",
            timeout=self._timeout,
            retry=self._retry,
        )
        with self._errors(location):
            for page in blobs.pages:
                # Prefixes come per page, sorted; the filter also covers servers that ignore startOffset.
                for prefix in sorted(page.prefixes):
                    name = prefix[len(location.path) :].rstrip("/")
                    if name and (start_after is None or name > start_after):
                        yield name

    def download(self, location: SourceLocation, key: str, out: CopySink, *, etag: str | None) -> None:
        # The MD5 is compared by the caller against the listed one, which also catches a changed object.
        with self._errors(replace(location, path=key), reading_object=True):
            self._client.bucket(location.bucket).blob(key).download_to_file(
                out, checksum=None, timeout=self._timeout, retry=self._retry
            )

    @contextmanager
    def _errors(self, location: SourceLocation, *, reading_object: bool = False) -> Iterator[None]:
        try:
            yield
        except SourceError:
            raise
        except gexc.NotFound:
            if reading_object:
                raise SourceError(
                    f"{location.uri}: the object no longer exists{self._where} (deleted since it was listed?); "
                    "re-run the batch"
                ) from None
            raise SourceError(
                f"{location.uri}: bucket '{location.bucket}' does not exist{self._where}; "
                "check the bucket name and endpoint"
            ) from None
        except gexc.Unauthorized:
            raise SourceError(f"{location.uri}: the GCS credentials were rejected{self._where}; check them") from None
        except gexc.Forbidden:
            raise SourceError(
                f"{location.uri}: access denied{self._where}; the credentials need storage.objects.list and "
                "storage.objects.get on the bucket"
            ) from None
        except auth_exc.RefreshError as exc:
            raise SourceError(
                redact(f"{location.uri}: the GCS credentials were rejected ({exc}); check them")
            ) from None
        except (requests.ConnectionError, requests.Timeout, auth_exc.TransportError, gexc.RetryError) as exc:
            target = self._options.gcs_endpoint or "storage.googleapis.com"
            raise SourceError(
                redact(
                    f"{location.uri}: cannot reach {target} ({type(exc).__name__}); check the endpoint and the network"
                )
            ) from None
        except gexc.GoogleAPICallError as exc:
            raise SourceError(redact(f"{location.uri}{self._where}: {exc}")) from None


def _credentials(options: ConnectionOptions) -> Any:
    """Credentials of an explicit type only: a key file from a storage config is not trusted to pick an
    arbitrary credential source (google-auth deprecates its generic loaders for that reason)."""
    token = options.gcs_token
    if token == "anon" or (token is None and options.gcs_endpoint):
        return AnonymousCredentials()
    if token is None or token == "google_default":
        return google.auth.default(scopes=READ_ONLY)[0]
    info = token if isinstance(token, dict) else json.loads(Path(token).expanduser().read_text())
    kind = info.get("type")
    if kind == "service_account":
        return service_account.Credentials.from_service_account_info(info, scopes=READ_ONLY)
    if kind == "authorized_user":
        return user_credentials.Credentials.from_authorized_user_info(info, scopes=READ_ONLY)
    raise ValueError(
        f"credentials of type {kind!r} are not supported here; use a service account key, or leave the credentials "
        "empty to use Application Default Credentials"
    )


def updated_ns(value: str | None) -> int:
    """An object's ``updated`` as ns, exactly as ``datetime_ns(Blob.updated)`` gives it: the library's parser runs
    ``strptime`` (about 20 µs an object); ``fromisoformat`` reads the RFC 3339 form GCS sends in a tenth of that
    and cuts digits past the µs just the same. Anything else takes the library's way, errors included."""
    if value is not None and _PLAIN_RFC3339.fullmatch(value):
        try:
            return datetime_ns(datetime.fromisoformat(value))
        except ValueError:
            pass
    return datetime_ns(_rfc3339_nanos_to_datetime(value) if value is not None else None)


def _content_tag(item: Mapping[str, Any]) -> str | None:
    """The MD5 as hex (comparable with an S3 ETag); composite objects only have a CRC32C."""
    md5, crc32c = item.get("md5Hash"), item.get("crc32c")
    if md5:
        return base64.b64decode(md5).hex()
    return f"crc32c:{crc32c}" if crc32c else None


def connect(location: SourceLocation, options: ConnectionOptions, *, checking: bool = False) -> GCSStore:
    return GCSStore(options, checking=checking)


def from_storage(config: Mapping[str, Any], relative: str, options: ConnectionOptions, need) -> tuple[SourceLocation, ConnectionOptions]:
    """A Synapse GCS storage: bucket_name, credentials (a key file, its content, or 'anon'), project. It has no
    endpoint key: an emulator comes from the base options (STORAGE_EMULATOR_HOST)."""
    resolved = options.with_values(gcs_token=config.get("credentials"), gcs_project=config.get("project"))
    return SourceLocation("gcs", need("bucket_name"), key_prefix(relative)), resolved
