"""The SDK's presigned upload protocol, with each file read once and every PUT on one connection pool.

``upload_files_bulk`` reads each file three times (the content guard, the SHA1, the PUT body) and sends each PUT
through ``httpx`` from 32 threads; on a 2-core machine that costs about as much client CPU as the sandbox spends
serving the whole upload. Here the caller's ``load`` reads a file once (and screens those bytes), the SHA1 is
taken from the same bytes, and the PUTs go through one ``aiohttp`` session on one event loop (its HTTP parser is
C: a 100 KB PUT costs about 0.2 ms of client CPU there, 0.43 ms through a ``urllib3`` pool from threads and
1 ms through ``httpx``, measured on these machines). The protocol is the SDK's own: ``request_presigned_upload``
and ``confirm_presigned_upload`` through the client (so the project's transport rules apply to them), the
server's choice of a single PUT or a multipart upload, and the SDK's rule for which failed PUTs are worth
sending again (``should_retry_upload``).

Files too big to hold (``Streamed``) are streamed from disk and hashed as they are sent; multipart uploads (the
server asks for them above its threshold, 100 MB today) of such files go through the SDK's own
``_upload_multipart``.
"""

from __future__ import annotations

import asyncio
import hashlib
import mimetypes
import os
import ssl
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import aiohttp
import certifi
from synapse_sdk.clients.backend.bulk_upload.strategies.presigned import (
    parse_storage_error,
    retry_backoff_seconds,
    should_retry_upload,
)
from yarl import URL

from synapse_dagster.core.synapse.bulk_upload import UploadTimeouts
from synapse_dagster.core.synapse.loop_thread import LoopThread


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


STREAM_BLOCK = 1 << 20  # what a streamed file is read (and hashed) in


class PresignedUploader:
    """One upload's worth of presign → PUT → confirm rounds. Files are read on a thread pool; the PUTs of every
    round run on one event loop, over one connection pool of ``max_workers`` connections."""

    def __init__(self, client: Any, *, max_workers: int = 16, max_put_retries: int = 2,
                 timeouts: UploadTimeouts = UploadTimeouts()) -> None:
        self.strategy = client._get_strategy_instance("presigned")
        self.timeouts, self.retries = timeouts, max(0, max_put_retries)
        self.workers = max(1, min(max_workers, 100))
        self.executor = ThreadPoolExecutor(self.workers, thread_name_prefix="synapse-read")
        self.loop = LoopThread("synapse-put")
        self._session: aiohttp.ClientSession | None = None
        self._slots: asyncio.Semaphore | None = None
        self._httpx: Any = None

    def __enter__(self) -> PresignedUploader:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.loop.close(self._close_session())
        finally:
            self.executor.shutdown(wait=True, cancel_futures=True)
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
        for landed, part in self.loop.run(self._send_all(sending, presigned.files, infos)):
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

    async def _send_all(self, sending: list[tuple[Outgoing, Body]], infos: list[Any], requests: list[dict[str, Any]]
                        ) -> list[tuple[Landed | None, tuple[str, dict[str, Any]] | None]]:
        if self._session is None:
            self._session, self._slots = _session(self.workers, self.timeouts), asyncio.Semaphore(self.workers)
        return await asyncio.gather(*(self._send(s, i, r) for s, i, r in zip(sending, infos, requests)))

    async def _close_session(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def _send(self, sending: tuple[Outgoing, Body], info: Any, request: dict[str, Any]
                    ) -> tuple[Landed | None, tuple[str, dict[str, Any]] | None]:
        """(a final result, or the confirm entry of a file that was PUT)."""
        file, body = sending
        try:
            if info.multipart:
                part = await self._multipart(info, body)
            else:
                sent = await self._put(info.presigned_url, body, request.get("content_type"))
                part = {"file_key": info.file_key, "checksum": sent["checksum"], "size": sent["size"]}
        except (PutFailed, OSError) as exc:
            return Landed(file.key, error=f"upload failed: {exc}"), None
        return None, (file.key, part)

    async def _put(self, url: str, body: Body, content_type: str | None) -> dict[str, Any]:
        headers = {"Content-Type": content_type} if content_type else {}
        for attempt in range(self.retries + 1):
            async with self._slots:  # type: ignore[union-attr]
                status, code, checksum, size, etag = await self._put_once(url, body, headers)
            if status < 300:
                return {"checksum": checksum, "size": size, "etag": etag}
            if attempt == self.retries or not should_retry_upload(status or None, code):
                what = f"storage answered HTTP {status}" if status else "storage did not answer"
                raise PutFailed(f"{what}{f' ({code})' if code else ''}")
            await asyncio.sleep(retry_backoff_seconds(attempt))
        raise AssertionError("unreachable")

    async def _put_once(self, url: str, body: Body, headers: dict[str, str]
                        ) -> tuple[int, str | None, str, int, str]:
        """(status, 0 when nothing came back; storage's error code; SHA1; size; ETag) of one PUT. The URL is sent
        as signed (``encoded``: re-quoting it would break the signature)."""
        assert self._session is not None
        target = URL(url, encoded=True)
        try:
            if isinstance(body, Streamed):
                with body.path.open("rb") as handle:
                    size = os.fstat(handle.fileno()).st_size
                    if size != body.size:
                        raise PutFailed(f"the file changed before it was sent ({body.size:,} → {size:,} bytes)")
                    digest = hashlib.sha1(usedforsecurity=False)
                    answer = await self._request(target, self._blocks(handle, digest),
                                                 {**headers, "Content-Length": str(size)})
                    checksum = digest.hexdigest()
            else:
                checksum, size = hashlib.sha1(body, usedforsecurity=False).hexdigest(), len(body)
                answer = await self._request(target, body, headers)
        except (aiohttp.ClientError, asyncio.TimeoutError):  # no answer (its text would quote the signed URL)
            return 0, None, "", 0, ""
        status, data, etag = answer
        code = parse_storage_error(data).get("Code") if status >= 300 else None
        return status, code, checksum, size, etag

    async def _request(self, url: URL, data: Any, headers: dict[str, str]) -> tuple[int, bytes, str]:
        assert self._session is not None
        async with self._session.put(url, data=data, headers=headers, allow_redirects=False) as response:
            return response.status, await response.read(), response.headers.get("ETag", "")

    async def _blocks(self, handle: BinaryIO, digest: Any) -> AsyncIterator[bytes]:
        """A streamed file's bytes, read on the read pool (never on the loop) and hashed as they go out."""
        loop = asyncio.get_running_loop()
        while block := await loop.run_in_executor(self.executor, handle.read, STREAM_BLOCK):
            digest.update(block)
            yield block

    async def _multipart(self, info: Any, body: Body) -> dict[str, Any]:
        """A multipart upload: parts of bytes in memory go on the session (a part's PUT may be sent again: the same
        part number replaces itself); a streamed file goes through the SDK's own ``_upload_multipart``, which reads
        and hashes it part by part."""
        if isinstance(body, Streamed):
            return await asyncio.get_running_loop().run_in_executor(self.executor, self._sdk_multipart, info, body)
        size, parts = info.multipart.part_size, []
        for part in info.multipart.parts:
            chunk = body[(part.part_number - 1) * size : part.part_number * size]
            if not chunk:
                break
            sent = await self._put(part.presigned_url, chunk, None)
            parts.append({"part_number": part.part_number, "etag": sent["etag"]})
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


def _session(connections: int, timeouts: UploadTimeouts) -> aiohttp.ClientSession:
    """PUTs as presigned URLs want them: no proxy from the environment (the URL names the storage), no redirects
    followed, no cookies, and no Content-Type unless the presign named one (a signed header must match)."""
    connector = aiohttp.TCPConnector(limit=connections, limit_per_host=0,
                                     ssl=ssl.create_default_context(cafile=certifi.where()))
    return aiohttp.ClientSession(connector=connector, trust_env=False, cookie_jar=aiohttp.DummyCookieJar(),
                                 timeout=aiohttp.ClientTimeout(total=None, connect=10.0, sock_read=timeouts.put_s),
                                 skip_auto_headers=("User-Agent", "Content-Type"))
