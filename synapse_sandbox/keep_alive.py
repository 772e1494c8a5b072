"""HTTP keep-alive for the sandbox's werkzeug server, which closes every connection after one request.

Werkzeug's development server sends ``Connection: close`` on every response, because Python's ``http.server``
cannot drain an unread request body before the next request line. Every presigned PUT then pays for a new TCP
connection and a new server thread, on both sides: on the 2-core machine that was the sandbox's largest cost
(about a fifth of its CPU in a 2,000-unit delivery), and it made every client look slower than it would against
a real backend and bucket, which keep connections open. This handler keeps a connection open when the request
body was read to its end (or there was none), and closes it otherwise, exactly as before.

Werkzeug also drains the socket after every response (anything readable within 10 ms), which is safe only because
it always closes: on a kept connection it would swallow the client's next request. The drain is skipped for a
connection this handler keeps (``_DrainAwareSelectors``, the one place werkzeug.serving uses ``selectors``); on
any other connection it runs as before.
"""

from __future__ import annotations

import selectors
import threading
from typing import Any, BinaryIO

import werkzeug.serving
from werkzeug.serving import WSGIRequestHandler

IDLE_TIMEOUT_S = 30.0  # an idle kept-alive connection is closed after this (it holds a server thread)


class _CountedInput:
    """``wsgi.input`` that counts what the application read, so the handler knows whether the body is drained."""

    def __init__(self, stream: BinaryIO, length: int) -> None:
        self.stream, self.length, self.read_bytes = stream, length, 0

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0 or size > self.length - self.read_bytes:
            size = self.length - self.read_bytes
        data = self.stream.read(size) if size > 0 else b""
        self.read_bytes += len(data)
        return data

    def readline(self, size: int = -1) -> bytes:
        limit = self.length - self.read_bytes
        data = self.stream.readline(limit if size is None or size < 0 else min(size, limit)) if limit > 0 else b""
        self.read_bytes += len(data)
        return data

    def __iter__(self) -> Any:
        return iter(self.readline, b"")

    @property
    def drained(self) -> bool:
        return self.read_bytes >= self.length


_kept = threading.local()  # per server thread: whether its current response keeps the connection


class _NothingToDrain:
    def register(self, *args: Any) -> None:
        pass

    def select(self, timeout: float | None = None) -> list:
        return []

    def close(self) -> None:
        pass


class _DrainAwareSelectors:
    EVENT_READ = selectors.EVENT_READ

    @staticmethod
    def DefaultSelector() -> Any:  # noqa: N802 - the name werkzeug calls
        return _NothingToDrain() if getattr(_kept, "connection", False) else selectors.DefaultSelector()


class KeepAliveRequestHandler(WSGIRequestHandler):
    timeout = IDLE_TIMEOUT_S

    def make_environ(self) -> dict[str, Any]:
        werkzeug.serving.selectors = _DrainAwareSelectors  # type: ignore[assignment]
        _kept.connection = False
        environ = super().make_environ()
        self._counted: _CountedInput | None = None
        length = environ.get("CONTENT_LENGTH") or "0"
        if environ.get("HTTP_TRANSFER_ENCODING", "").lower() == "chunked" or not length.isdigit():
            self._reusable = False  # werkzeug decodes chunked bodies itself; keep its close
        else:
            self._counted = _CountedInput(environ["wsgi.input"], int(length))
            environ["wsgi.input"] = self._counted
            self._reusable = True
        return environ

    def send_header(self, keyword: str, value: str) -> None:
        if keyword.lower() == "connection" and value.lower() == "close" and self._keep():
            _kept.connection = True
            return  # the client's own "Connection: close", if any, was honoured by parse_request
        super().send_header(keyword, value)

    def _keep(self) -> bool:
        counted = getattr(self, "_counted", None)
        return getattr(self, "_reusable", False) and (counted is None or counted.drained)
