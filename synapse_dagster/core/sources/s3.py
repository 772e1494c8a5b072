"""S3 and S3-compatible stores through botocore: ListObjectsV2 pages streamed straight into records.

A listing holds two pages (1,000 keys each) at a time however many keys there are: the one being turned into
records and the next, which :func:`~.store.read_ahead` fetches meanwhile. s3fs and ``UPath.rglob`` build the
whole listing first.

The clients parse ISO 8601 timestamps with ``datetime.fromisoformat`` instead of botocore's dateutil parser,
which alone took half the client's CPU in a listing.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from typing import Any

import botocore.session
from botocore.config import Config
from botocore.parsers import ResponseParserFactory
from botocore.utils import parse_timestamp
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    NoCredentialsError,
    ParamValidationError,
    PartialCredentialsError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)

from synapse_dagster.core.sources.files import SourceError
from synapse_dagster.core.redaction import redact
from synapse_dagster.core.sources.location import SourceLocation, key_prefix
from synapse_dagster.core.sources.options import ConnectionOptions
from synapse_dagster.core.sources.store import CHUNK_SIZE, CopySink, ListedFile, datetime_ns, read_ahead

PAGE_SIZE = 1000
CHECK_READ_TIMEOUT = 15.0  # a one-key listing answers fast; a silent server should not hold a check for a minute


_session_lock = threading.Lock()
_session: botocore.session.Session | None = None


def _create_client(**kwargs: object) -> object:
    """Clients from one shared botocore session: it parses the S3 service model once (about 0.1 s), not per
    listing. Creating clients from a session is not thread-safe, hence the lock."""
    global _session
    with _session_lock:
        if _session is None:
            _session = _new_session()
        return _session.create_client("s3", **kwargs)


def _new_session() -> botocore.session.Session:
    """A session of this module's own (not botocore's default one) whose clients parse timestamps fast."""
    session = botocore.session.get_session()
    parsers = ResponseParserFactory()
    parsers.set_parser_defaults(timestamp_parser=parse_s3_timestamp)
    session.register_component("response_parser_factory", parsers)
    return session


def parse_s3_timestamp(value: Any) -> datetime:
    """What botocore's ``parse_timestamp`` returns, at a fraction of its cost for the UTC ISO 8601 form every
    listed object's LastModified takes ('2026-11-23T20:10:14.000Z'); any other form (HTTP dates in headers,
    epoch numbers) goes to botocore's parser. Both keep microseconds and cut anything finer."""
    if isinstance(value, str) and value.endswith("Z"):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            pass
    return parse_timestamp(value)


class S3Store:
    def __init__(self, options: ConnectionOptions, *, checking: bool = False) -> None:
        self._options = options
        config = Config(
            connect_timeout=options.connect_timeout,
            read_timeout=min(options.read_timeout, CHECK_READ_TIMEOUT) if checking else options.read_timeout,
            retries={"total_max_attempts": 1 if checking else options.max_attempts, "mode": "standard"},
            # Custom endpoints (MinIO, SeaweedFS, an IP) rarely resolve virtual-host bucket names.
            s3={"addressing_style": "path" if options.endpoint_url else "auto"},
        )
        self._client: Any = _create_client(
            endpoint_url=options.endpoint_url,
            region_name=options.region or "us-east-1",
            aws_access_key_id=options.access_key,
            aws_secret_access_key=options.secret_key,
            aws_session_token=options.session_token,
            config=config,
        )

    def close(self) -> None:
        self._client.close()

    def check(self, location: SourceLocation, *, allow_empty: bool = False) -> None:
        with self._errors(location):
            page = self._client.list_objects_v2(Bucket=location.bucket, Prefix=location.path, MaxKeys=1)
            if page.get("KeyCount", 0) or allow_empty:
                return
            if not location.path:
                raise SourceError(f"{location.uri}{self._where()}: the bucket is empty; nothing to list")
            is_object = self._is_object(location.bucket, location.path.rstrip("/"))
            hint = "; it names an object, not a folder" if is_object else ""
            raise SourceError(
                f"{location.uri}{self._where()}: no objects under this prefix (missing, or an empty folder){hint}; "
                "check the path (S3 folders exist only while they hold objects)"
            )

    def iter_files(self, location: SourceLocation, *, recursive: bool, start_after: str | None = None) -> Iterator[ListedFile]:
        kwargs = {"Bucket": location.bucket, "Prefix": location.path}
        if not recursive:
            kwargs["Delimiter"] = "/"
        if start_after:
            kwargs["StartAfter"] = f"{location.path}{start_after}"
        paginator = self._client.get_paginator("list_objects_v2")
        pages = paginator.paginate(**kwargs, PaginationConfig={"PageSize": PAGE_SIZE})
        # Every key starts with the prefix, so its URI is the folder's plus the rest (location.file_uri per key
        # would look the provider up again each time).
        cut, folder_uri = len(location.path), location.uri
        with self._errors(location):
            for page in read_ahead(iter(pages)):
                for item in page.get("Contents", ()):
                    key = item["Key"]
                    relative = key[cut:]
                    if not relative or key.endswith("/"):
                        continue  # a zero-byte "folder" marker some tools create
                    yield ListedFile(
                        relative,
                        folder_uri + relative,
                        int(item["Size"]),
                        datetime_ns(item["LastModified"]),
                        (item.get("ETag") or "").strip('"') or None,
                    )

    def iter_subfolders(self, location: SourceLocation, *, start_after: str | None) -> Iterator[str]:
        kwargs = {"Bucket": location.bucket, "Prefix": location.path, "Delimiter": "/"}
        if start_after:
            # Keys below '<start_after>/' sort after '<start_after>' and still roll up into that one prefix,
            # which the filter below drops; everything before it is skipped by the server.
            kwargs["StartAfter"] = f"{location.path}{start_after}"
        paginator = self._client.get_paginator("list_objects_v2")
        with self._errors(location):
            for page in paginator.paginate(**kwargs, PaginationConfig={"PageSize": PAGE_SIZE}):
                for common in page.get("CommonPrefixes", ()):
                    name = common["Prefix"][len(location.path) :].rstrip("/")
                    if name and (start_after is None or name > start_after):
                        yield name

    def download(self, location: SourceLocation, key: str, out: CopySink, *, etag: str | None) -> None:
        kwargs = {"Bucket": location.bucket, "Key": key}
        if etag:
            kwargs["IfMatch"] = f'"{etag}"'  # fail rather than copy a newer version than the one listed
        with self._errors(replace(location, path=key)):
            body = self._client.get_object(**kwargs)["Body"]
            try:
                for chunk in body.iter_chunks(CHUNK_SIZE):
                    out.write(chunk)
            finally:
                body.close()

    def _is_object(self, bucket: str, key: str) -> bool:
        try:
            self._client.head_object(Bucket=bucket, Key=key)
            return True
        except ClientError:
            return False

    def _where(self) -> str:
        return f" at {self._options.endpoint_url}" if self._options.endpoint_url else ""

    @contextmanager
    def _errors(self, location: SourceLocation) -> Iterator[None]:
        try:
            yield
        except SourceError:
            raise
        except ClientError as exc:
            raise SourceError(redact(self._explain(location, exc))) from None
        except (NoCredentialsError, PartialCredentialsError):
            raise SourceError(
                f"{location.uri}: no S3 credentials found; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
                "(or access_key/secret_key in the storage)"
            ) from None
        except (BotoConnectionError, HTTPClientError) as exc:
            target = self._options.endpoint_url or f"S3 in region {self._options.region or 'us-east-1'}"
            raise SourceError(
                redact(
                    f"{location.uri}: cannot reach {target} ({exc}); "
                    "check endpoint_url and that the server is up and answering"
                )
            ) from None
        except ParamValidationError as exc:
            raise SourceError(redact(f"{location.uri}: invalid request ({exc}); check the bucket name")) from None
        except BotoCoreError as exc:
            raise SourceError(redact(f"{location.uri}{self._where()}: {exc}")) from None

    def _explain(self, location: SourceLocation, exc: ClientError) -> str:
        error = exc.response.get("Error", {})
        code = str(error.get("Code") or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or "")
        where = self._where()
        if code in ("NoSuchBucket", "404") and "Key" not in str(exc.operation_name):
            return (
                f"{location.uri}: bucket '{location.bucket}' does not exist{where}; check the bucket name and endpoint"
            )
        if code == "NoSuchKey":
            return (
                f"{location.uri}: the object no longer exists{where} (deleted since it was listed?); re-run the batch"
            )
        if code in ("PreconditionFailed", "412"):
            return (
                f"{location.uri}: the object changed since it was listed{where}; "
                "re-run the batch to pick up the new version"
            )
        if code == "InvalidAccessKeyId":
            return (
                f"{location.uri}: the access key ID is not known{where}; "
                "check AWS_ACCESS_KEY_ID or the storage's access_key"
            )
        if code == "SignatureDoesNotMatch":
            return (
                f"{location.uri}: the secret key does not match the access key ID{where}; "
                "check AWS_SECRET_ACCESS_KEY or the storage's secret_key"
            )
        if code in ("ExpiredToken", "InvalidToken", "TokenRefreshRequired"):
            return f"{location.uri}: the session token is expired or invalid{where}; refresh the credentials"
        if code in ("AccessDenied", "AllAccessDisabled", "403"):
            return (
                f"{location.uri}: access denied{where}; the credentials need s3:ListBucket on the bucket "
                "and s3:GetObject on its objects"
            )
        if code in ("PermanentRedirect", "AuthorizationHeaderMalformed", "301", "IllegalLocationConstraintException"):
            return f"{location.uri}: the bucket is in another region than '{self._options.region}'; set the region"
        if code == "InvalidBucketName":
            return f"{location.uri}: '{location.bucket}' is not a valid bucket name"
        return f"{location.uri}{where}: {code or 'error'}: {error.get('Message') or exc}"


def connect(location: SourceLocation, options: ConnectionOptions, *, checking: bool = False) -> S3Store:
    return S3Store(options, checking=checking)


def from_storage(config: Mapping[str, Any], relative: str, options: ConnectionOptions, need) -> tuple[SourceLocation, ConnectionOptions]:
    """A Synapse S3/MinIO storage: bucket_name, access_key, secret_key, region_name, endpoint_url."""
    resolved = options.with_values(
        access_key=config.get("access_key"),
        secret_key=config.get("secret_key"),
        region=config.get("region_name"),
        endpoint_url=config.get("endpoint_url"),
    )
    return SourceLocation("s3", need("bucket_name"), key_prefix(relative)), resolved
