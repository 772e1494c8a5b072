"""The SDK's HTTP transport, made safe for requests that create something.

``BackendClient`` retries every method, POST included, on 502/503/504 (and on 503 with ``Retry-After``). A 5xx
that a proxy or the backend sends *after* the write committed then creates the same data units again, and the
caller sees one success. The client here keeps the SDK's retries for reads and for idempotent POSTs (asking for
upload URLs, confirming an uploaded file key, checking checksums), but for the endpoints that create records a
5xx is handed to the caller, whose one retry loop (``core/deliver/creation.py``) first asks Synapse what exists.
A 429 is still retried by the transport, honouring ``Retry-After``: the server refused it, so nothing was written.
"""

from __future__ import annotations

from typing import Any

from requests.adapters import HTTPAdapter
from synapse_sdk.clients.base import BoundedRetry

# Endpoints whose POST creates records that a blind retry would duplicate.
CREATING_ENDPOINTS = ("data_units/", "tasks/", "data_files/")
IDEMPOTENT_POSTS = ("data_files/presigned_upload/", "data_files/verify_checksums/")


class CreateSafeRetry(BoundedRetry):
    """The SDK's retry policy, except that a POST or PATCH is retried only on 429 (and on connect errors, where
    nothing was sent)."""

    RETRY_AFTER_STATUS_CODES = frozenset({413, 429})

    def is_retry(self, method: str, status_code: int, has_retry_after: bool = False) -> bool:
        if method.upper() in ("POST", "PATCH") and status_code != 429:
            return False
        return super().is_retry(method, status_code, has_retry_after)


def guard_creates(client: Any) -> Any:
    """Mount :class:`CreateSafeRetry` on the client's creating endpoints (longest prefix wins in ``requests``)."""
    session = client.requests_session
    config = {**client._retry_config, "status_forcelist": [429, 502, 503, 504]}
    adapter = HTTPAdapter(max_retries=CreateSafeRetry(**config))
    safe = HTTPAdapter(max_retries=BoundedRetry(**client._retry_config))
    for path in CREATING_ENDPOINTS:
        session.mount(f"{client.base_url}/{path}", adapter)
    for path in IDEMPOTENT_POSTS:
        session.mount(f"{client.base_url}/{path}", safe)
    return client
