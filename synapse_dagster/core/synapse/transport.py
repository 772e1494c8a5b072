"""The SDK's HTTP transport, made safe for requests that create something, and polite under rate limits.

``BackendClient`` retries every method, POST included, on 502/503/504 (and on 503 with ``Retry-After``). A 5xx
that a proxy or the backend sends *after* the write committed then creates the same data units again, and the
caller sees one success. The client here keeps the SDK's retries for reads and for idempotent POSTs (asking for
upload URLs, confirming an uploaded file key, checking checksums), but for the endpoints that create records a
5xx is handed to the caller, whose one retry loop (``core/deliver/creation.py``) first asks Synapse what exists.

A 429 is handled above urllib3, by :class:`ThrottledAdapter`: the server refused the request, so nothing was
written and resending is safe for every method. Each request waits for a turn of the process's
:class:`~synapse_dagster.core.synapse.limiter.AdaptiveLimiter`, so a 429 slows every thread of the process, not
just the one that got it.
"""

from __future__ import annotations

from email.utils import parsedate_to_datetime
import time
from typing import Any

from requests import PreparedRequest, Response
from requests.adapters import HTTPAdapter
from synapse_sdk.clients.base import BoundedRetry

from synapse_dagster.core.synapse.limiter import DEFAULT_MAX_CONCURRENCY, AdaptiveLimiter, limiter_for

# Endpoints whose POST creates records that a blind retry would duplicate.
CREATING_ENDPOINTS = ("data_units/", "tasks/", "data_files/")
IDEMPOTENT_POSTS = ("data_files/presigned_upload/", "data_files/verify_checksums/")
THROTTLE_ATTEMPTS = 8  # 429s in a row before the answer goes to the caller


class NoThrottleRetry(BoundedRetry):
    """The SDK's retry policy without 429, which :class:`ThrottledAdapter` handles where the limiter sees it."""

    def is_retry(self, method: str, status_code: int, has_retry_after: bool = False) -> bool:
        return status_code != 429 and super().is_retry(method, status_code, has_retry_after)


class CreateSafeRetry(NoThrottleRetry):
    """A POST or PATCH is not retried on any status (only on connect errors, where nothing was sent)."""

    def is_retry(self, method: str, status_code: int, has_retry_after: bool = False) -> bool:
        if method.upper() in ("POST", "PATCH"):
            return False
        return super().is_retry(method, status_code, has_retry_after)


class ThrottledAdapter(HTTPAdapter):
    """Sends each request in a turn of ``limiter``; on 429 waits ``Retry-After`` (with jitter) and sends again.

    ``read_timeout`` caps every request's read timeout: the SDK's bulk upload passes its own 120 s to the presign
    and confirm calls, which would otherwise ignore the client's setting.
    """

    def __init__(self, limiter: AdaptiveLimiter, read_timeout: float | None = None, **kwargs: Any) -> None:
        self.limiter = limiter
        self.read_timeout = read_timeout
        super().__init__(**kwargs)

    def send(self, request: PreparedRequest, *args: Any, **kwargs: Any) -> Response:
        if self.read_timeout is not None:
            kwargs["timeout"] = _capped(kwargs.get("timeout"), self.read_timeout)
        for _ in range(THROTTLE_ATTEMPTS - 1):
            with self.limiter.turn():
                response = super().send(request, *args, **kwargs)
            if response.status_code != 429:
                self.limiter.succeeded()
                return response
            wait = self.limiter.throttled(retry_after_seconds(response.headers.get("Retry-After")))
            response.close()
            time.sleep(wait)
        with self.limiter.turn():
            return super().send(request, *args, **kwargs)


def _capped(timeout: Any, read_cap: float) -> Any:
    if isinstance(timeout, tuple):
        connect, read = timeout
        return connect, read_cap if read is None else min(read, read_cap)
    return read_cap if timeout is None else (timeout, min(timeout, read_cap))


def retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` as seconds: a number, or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def guard_creates(client: Any, *, max_concurrency: int = DEFAULT_MAX_CONCURRENCY) -> Any:
    """Mount the throttled adapters on the client's API (longest prefix wins in ``requests``): create-safe retries
    on the creating endpoints, the SDK's retries elsewhere, one limiter for all, the client's read timeout."""
    session = client.requests_session
    limiter = limiter_for(client.base_url, max_concurrency)
    read_timeout = (client.timeout or {}).get("read") if isinstance(client.timeout, dict) else None
    options = {"pool_connections": max_concurrency, "pool_maxsize": max_concurrency, "read_timeout": read_timeout}
    reads = ThrottledAdapter(limiter, max_retries=NoThrottleRetry(**client._retry_config), **options)
    creates = ThrottledAdapter(limiter, max_retries=CreateSafeRetry(**client._retry_config), **options)
    session.mount(f"{client.base_url}/", reads)
    for path in CREATING_ENDPOINTS:
        session.mount(f"{client.base_url}/{path}", creates)
    for path in IDEMPOTENT_POSTS:
        session.mount(f"{client.base_url}/{path}", reads)
    return client
