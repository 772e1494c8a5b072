"""The SDK's presigned upload protocol, with each file read once and every PUT on one connection pool.

``upload_files_bulk`` reads each file three times (the content guard, the SHA1, the PUT body) and sends each PUT
through ``httpx`` from 32 threads; on a 2-core machine that costs about as much client CPU as the sandbox spends
serving the whole upload. Here the caller's ``load`` reads a file once (and screens those bytes), the SHA1 is
taken from the same bytes, and the PUT goes through one ``urllib3`` pool (the library under ``requests``). The
protocol is the SDK's own: ``request_presigned_upload`` and ``confirm_presigned_upload`` through the client (so
the project's transport rules apply to them), the server's choice of a single PUT or a multipart upload, and the
SDK's rule for which failed PUTs are worth sending again (``should_retry_upload``).

Files too big to hold (``Streamed``) are streamed from disk and hashed as they are sent; multipart uploads (the
server asks for them above its threshold, 100 MB today) go through the SDK's own ``_upload_multipart``.
"""

from __future__ import annotations

import hashlib
import mimetypes
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import certifi
import urllib3
from synapse_sdk.clients.backend.bulk_upload.strategies.presigned import (
    parse_storage_error,
    retry_backoff_seconds,
    should_retry_upload,
)

from synapse_dagster.core.synapse.bulk_upload import UploadTimeouts


@dataclass(frozen=True)
class Streamed:
    """A file to send from disk as it is read (too big to hold in memory), of the size it was screened at."""

    path: Path
    size: int


@dataclass(frozen=True)
class Refused:
    """``load`` would not send this file: ``status`` and ``reason`` go to the caller's result as they are."""

    status: str
    reason: str


Body = bytes | Streamed


@dataclass(frozen=True)
class Outgoing:
    key: str  # the caller's id for the file
    name: str
    size: int
    load: Callable[[], Body | Refused]  # read (and screen) the file, once, in its round


@dataclass(frozen=True)
class Landed:
    """What became of one :class:`Outgoing`: a confirmed checksum, a refusal by ``load``, or an error."""

    key: str
    checksum: str | None = None
    data_file_id: int | None = None
    error: str | None = None
    refused: Refused | None = None


class PutFailed(Exception):
    """A PUT that storage refused or that never got an answer; the message never quotes the URL (it is signed)."""


class PresignedUploader:
    """One upload's worth of presign → PUT → confirm rounds, sharing a thread pool and a connection pool."""

    def __init__(self, client: Any, *, max_workers: int = 16, max_put_retries: int = 2,
                 timeouts: UploadTimeouts = UploadTimeouts()) -> None:
        self.strategy = client._get_strategy_instance("presigned")
        self.timeouts, self.retries = timeouts, max(0, max_put_retries)
        self.workers = max(1, min(max_workers, 100))
        self.pool = urllib3.PoolManager(num_pools=8, maxsize=self.workers, block=True, retries=False,
                                        ca_certs=certifi.where(), timeout=urllib3.Timeout(connect=10.0,
                                                                                          read=timeouts.put_s))
        self.executor = ThreadPoolExecutor(self.workers, thread_name_prefix="synapse-put")
        self._httpx: Any = None

    def __enter__(self) -> PresignedUploader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)
        self.pool.clear()
        if self._httpx is not None:
            self._httpx.close()

    def upload(self, files: list[Outgoing]) -> list[Landed]:
        """One round: read (and screen) ``files`` in parallel, presign those that passed, send them in parallel
        from memory, confirm what was sent. A file ``load`` refuses is never presigned. A failure of the presign
        or confirm call itself raises (what landed is then unknown to the caller)."""
        bodies = list(self.executor.map(lambda f: f.load(), files))
        out = [Landed(f.key, refused=b) for f, b in zip(files, bodies) if isinstance(b, Refused)]
        sending = [(f, b) for f, b in zip(files, bodies) if not isinstance(b, Refused)]
        if not sending:
            return out
        infos = [{"filename": f.name, "size": f.size, "content_type": mimetypes.guess_type(f.name)[0]}
                 for f, _ in sending]
        presigned = self.strategy.request_presigned_upload(infos, timeout=self.timeouts.api_s)
        parts: list[dict[str, Any]] = []
        keys: dict[str, str] = {}  # storage file key -> the caller's key
        for landed, part in self.executor.map(self._send, sending, presigned.files, infos):
            if landed is not None:
                out.append(landed)
            elif part is not None:
                keys[part[1]["file_key"]] = part[0]
                parts.append(part[1])
        out += [Landed(f.key, error="no presigned URL was returned for this file (not uploaded); re-run the batch")
                for f, _ in sending[len(presigned.files):]]
        return out + (self._confirm(keys, parts) if parts else [])

    def _confirm(self, keys: dict[str, str], parts: list[dict[str, Any]]) -> list[Landed]:
        response = self.strategy.confirm_presigned_upload(parts, timeout=self.timeouts.api_s)
        out = []
        for result in response.results:
            key = keys.pop(result.file_key, None)
            if key is None:
                continue
            if result.success and result.checksum:
                out.append(Landed(key, result.checksum, result.data_file_id))
            else:
                out.append(Landed(key, error=f"the server did not confirm the upload: {result.error or 'no reason'}"))
        out += [Landed(key, error="the confirm call returned no result for this file; re-run the batch")
                for key in keys.values()]
        return out

    def _send(self, sending: tuple[Outgoing, Body], info: Any, request: dict[str, Any]
              ) -> tuple[Landed | None, tuple[str, dict[str, Any]] | None]:
        """(a final result, or the confirm entry of a file that was PUT)."""
        file, body = sending
        try:
            if info.multipart:
                part = self._multipart(info, body)
            else:
                sent = self._put(info.presigned_url, body, request.get("content_type"))
                part = {"file_key": info.file_key, "checksum": sent["checksum"], "size": sent["size"]}
        except (PutFailed, OSError) as exc:
            return Landed(file.key, error=f"upload failed: {exc}"), None
        return None, (file.key, part)

    def _put(self, url: str, body: Body, content_type: str | None) -> dict[str, Any]:
        headers = {"Content-Type": content_type} if content_type else {}
        for attempt in range(self.retries + 1):
            status, code, checksum, size, etag = self._put_once(url, body, headers)
            if status < 300:
                return {"checksum": checksum, "size": size, "etag": etag}
            if attempt == self.retries or not should_retry_upload(status or None, code):
                what = f"storage answered HTTP {status}" if status else "storage did not answer"
                raise PutFailed(f"{what}{f' ({code})' if code else ''}")
            time.sleep(retry_backoff_seconds(attempt))
        raise AssertionError("unreachable")

    def _put_once(self, url: str, body: Body, headers: dict[str, str]) -> tuple[int, str | None, str, int, str]:
        """(status, 0 when nothing came back; storage's error code; SHA1; size; ETag) of one PUT."""
        try:
            if isinstance(body, Streamed):
                with body.path.open("rb") as handle:
                    reader = _HashingReader(handle)
                    size = os.fstat(handle.fileno()).st_size
                    if size != body.size:
                        raise PutFailed(f"the file changed before it was sent ({body.size:,} → {size:,} bytes)")
                    response = self._urlopen(url, reader, {**headers, "Content-Length": str(size)})
                    checksum = reader.digest.hexdigest()
            else:
                checksum, size = hashlib.sha1(body, usedforsecurity=False).hexdigest(), len(body)
                response = self._urlopen(url, body, headers)
        except urllib3.exceptions.HTTPError:  # no answer (its text would quote the signed URL)
            return 0, None, "", 0, ""
        code = parse_storage_error(response.data).get("Code") if response.status >= 300 else None
        return response.status, code, checksum, size, response.headers.get("ETag", "")

    def _urlopen(self, url: str, body: Any, headers: dict[str, str]) -> urllib3.BaseHTTPResponse:
        """One PUT on the host's pool (found once per URL, not through ``PoolManager.urlopen``'s redirect and
        proxy handling, which presigned PUTs never need)."""
        parsed = urllib3.util.parse_url(url)
        pool = self.pool.connection_from_host(parsed.host, parsed.port, parsed.scheme)
        return pool.urlopen("PUT", parsed.request_uri, body=body, headers=headers, retries=False, redirect=False,
                            assert_same_host=False, preload_content=True)

    def _multipart(self, info: Any, body: Body) -> dict[str, Any]:
        """A multipart upload: parts of bytes in memory go on the pool (a part's PUT may be sent again: the same
        part number replaces itself); a streamed file goes through the SDK's own ``_upload_multipart``, which reads
        and hashes it part by part."""
        if isinstance(body, Streamed):
            return self._sdk_multipart(info, body)
        size, parts = info.multipart.part_size, []
        for part in info.multipart.parts:
            chunk = body[(part.part_number - 1) * size : part.part_number * size]
            if not chunk:
                break
            parts.append({"part_number": part.part_number, "etag": self._put(part.presigned_url, chunk, None)["etag"]})
        return {"file_key": info.file_key, "checksum": hashlib.sha1(body, usedforsecurity=False).hexdigest(),
                "size": len(body), "multipart": {"upload_id": info.multipart.upload_id, "parts": parts}}

    def _sdk_multipart(self, info: Any, body: Streamed) -> dict[str, Any]:
        import httpx

        if self._httpx is None:
            self._httpx = httpx.Client(timeout=self.timeouts.put_s)
        try:
            return self.strategy._upload_multipart(info, body.path, self.timeouts.put_s, self._httpx)
        except httpx.HTTPError as exc:
            raise PutFailed(f"a multipart part failed ({type(exc).__name__})") from None


class _HashingReader:
    """A file object for ``urllib3`` that hashes what it hands out, so a streamed file is read once."""

    def __init__(self, handle: BinaryIO) -> None:
        self.handle, self.digest = handle, hashlib.sha1(usedforsecurity=False)

    def read(self, size: int = -1) -> bytes:
        block = self.handle.read(size)
        self.digest.update(block)
        return block
