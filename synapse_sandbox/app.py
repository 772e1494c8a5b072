"""The sandbox's HTTP face: the v1 routes the real ``BackendClient`` calls, plus signed storage URLs.

Routes, payloads and status codes follow ``docs/synapse-http-contract.md``. Storage URLs (presigned
PUTs and file downloads) carry an HMAC signature instead of the API token, as S3 presigned URLs do, so
the SDK uses them verbatim without auth headers. ``/_sandbox/*`` is the test harness's control panel.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import logging
import os
import socket
import struct
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from synapse_sandbox.faults import BEFORE, FaultConfigError, FaultInjector
from synapse_sandbox.store import ApiError, SandboxStore

log = logging.getLogger("synapse_sandbox")

DOWNLOAD_URL_SECONDS = 24 * 3600
MAX_PAGE_SIZE = 1000

_ROUTES = [
    ("GET", "/data_collections/", "list_collections"),
    ("GET", "/data_collections/<int:pk>/", "get_collection"),
    ("GET", "/storages/", "list_storages"),
    ("GET", "/storages/<int:pk>/", "get_storage"),
    ("POST", "/storages/<int:pk>/session/", "storage_session"),
    ("POST", "/data_files/presigned_upload/upload/", "presigned_upload"),
    ("POST", "/data_files/presigned_upload/confirm_upload/", "confirm_upload"),
    ("POST", "/data_files/verify_checksums/", "verify_checksums"),
    ("POST", "/data_files/", "create_data_file"),
    ("GET", "/data_files/<int:pk>/", "get_data_file"),
    ("PUT", "/chunked_upload/", "chunked_put"),
    ("PUT", "/chunked_upload/<upload_id>/", "chunked_put"),
    ("POST", "/chunked_upload/<upload_id>/", "chunked_finalize"),
    ("GET", "/chunked_upload/<upload_id>/", "chunked_get"),
    ("GET", "/data_units/", "list_units"),
    ("POST", "/data_units/", "create_units"),
    ("GET", "/data_units/<int:pk>/", "get_unit"),
    ("GET", "/projects/<int:pk>/", "get_project"),
    ("POST", "/tasks/", "create_tasks"),
    ("GET", "/tasks/", "list_tasks"),
    ("GET", "/sdk/tasks/", "list_tasks"),
    ("PUT", "/_storage/upload/<path:file_key>", "storage_put"),
    ("GET", "/_storage/files/<int:pk>/<path:name>", "storage_get"),
    ("GET", "/_sandbox/health", "admin_health"),
    ("POST", "/_sandbox/seed", "admin_seed"),
    ("GET", "/_sandbox/faults", "admin_get_faults"),
    ("PUT", "/_sandbox/faults", "admin_put_faults"),
    ("GET", "/_sandbox/stats", "admin_stats"),
    ("GET", "/_sandbox/config", "admin_get_config"),
    ("PUT", "/_sandbox/config", "admin_put_config"),
]
_PUBLIC = {"storage_put", "storage_get", "admin_health"}  # signed URLs and the health probe need no token


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body, default=str), status=status, mimetype="application/json", headers=headers)


def s3_error(status: int, code: str, message: str) -> Response:
    xml = f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code><Message>{message}</Message></Error>"
    return Response(xml, status=status, mimetype="application/xml")


class SandboxApp:
    """WSGI application. ``token`` guards the API; ``signing_key`` signs storage URLs."""

    def __init__(self, store: SandboxStore, token: str, signing_key: bytes) -> None:
        self.store = store
        self.token = token
        self.signing_key = signing_key
        self.faults = FaultInjector()
        self.requests: Counter[str] = Counter()
        self.api_in_flight = 0  # API requests being served now, and the most at once since the last reset
        self.api_peak = 0
        self.api_peak_routes: list[str] = []  # what was in flight at the peak
        self._in_flight: dict[int, str] = {}
        self._tickets = itertools.count()
        self._stats_lock = threading.Lock()
        self.url_map = Map(
            [Rule(path, methods=[method], endpoint=(method, path, name)) for method, path, name in _ROUTES],
            strict_slashes=False,
        )

    # --- plumbing -------------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Any:
        request = Request(environ)
        adapter = self.url_map.bind_to_environ(environ)
        try:
            (method, template, name), args = adapter.match()
        except HTTPException as exc:
            return json_response({"detail": exc.name}, exc.code or 404)(environ, start_response)
        route = f"{method} {template.lstrip('/')}"
        with self._stats_lock:
            self.requests[route] += 1
        if name.startswith(("admin_", "storage_")):  # storage is not the API: its PUTs go to the bucket
            return self._handle(request, route, name, args, environ, start_response)
        ticket = self._enter_api(route)
        try:
            return self._handle(request, route, name, args, environ, start_response)
        finally:
            self._leave_api(ticket)

    def _enter_api(self, route: str) -> int:
        with self._stats_lock:
            ticket = next(self._tickets)
            self._in_flight[ticket] = route
            self.api_in_flight += 1
            if self.api_in_flight > self.api_peak:
                self.api_peak, self.api_peak_routes = self.api_in_flight, sorted(self._in_flight.values())
            return ticket

    def _leave_api(self, ticket: int) -> None:
        with self._stats_lock:
            self.api_in_flight -= 1
            self._in_flight.pop(ticket, None)

    def _handle(self, request: Request, route: str, name: str, args: dict[str, Any], environ: dict[str, Any],
                start_response: Callable) -> Any:
        admin = name.startswith("admin_")
        fault = None if admin else self.faults.pick(request.method, request.path)
        if fault is not None and fault.action in BEFORE:
            time.sleep(fault.latency_ms / 1000)  # latency; or an error held that long first
            if fault.action != "latency":
                _drain(request)
                headers = {"Retry-After": str(fault.retry_after)} if fault.action == "rate_limit" else None
                detail = "Request was throttled." if fault.action == "rate_limit" else "injected fault"
                # nothing was committed, so a client's retry is safe
                return json_response({"detail": detail}, fault.status, headers)(environ, start_response)
        if name not in _PUBLIC and not self._authorized(request):
            _drain(request)
            return json_response({"detail": "Invalid token."}, 401)(environ, start_response)
        try:
            response = getattr(self, name)(request, **args)
        except ApiError as exc:
            response = json_response(exc.body, exc.status)
        except FaultConfigError as exc:
            response = json_response({"detail": str(exc)}, 400)
        except Exception as exc:  # nothing was committed: every store write is one transaction
            log.error("unhandled error on %s: %s", route, traceback.format_exc())
            response = json_response({"detail": f"internal error ({type(exc).__name__})"}, 500)
        if fault is not None and fault.action == "lose_response":
            _drop_connection(environ)
        elif fault is not None and fault.action == "reset":
            _reset_connection(environ)
        elif fault is not None and fault.action == "slow_response":
            time.sleep(fault.latency_ms / 1000)
        elif fault is not None and fault.action == "error_after_commit":
            response = json_response({"detail": "injected fault after commit"}, fault.status)
        return response(environ, start_response)

    def _authorized(self, request: Request) -> bool:
        for header in ("Synapse-Access-Token", "Authorization"):
            value = request.headers.get(header, "")
            scheme, _, credential = value.partition(" ")
            if scheme.lower() == "token" and hmac.compare_digest(credential.strip().encode(), self.token.encode()):
                return True
        return False

    def _sign(self, *parts: object) -> str:
        message = "\n".join(str(p) for p in parts).encode()
        return hmac.new(self.signing_key, message, hashlib.sha256).hexdigest()

    def _signed_ok(self, request: Request, *parts: object) -> Response | None:
        """``None`` when the URL's signature is valid and unexpired, else the S3-style error response."""
        expires = request.args.get("expires", "")
        signature = request.args.get("signature", "")
        if not expires.isdigit() or not hmac.compare_digest(signature, self._sign(*parts, expires)):
            return s3_error(403, "SignatureDoesNotMatch", "The request signature we calculated does not match.")
        if int(expires) < time.time():
            return s3_error(403, "AccessDenied", "Request has expired")
        return None

    def _upload_url(self, request: Request, file_key: str, expires: int, upload_id: str = "", part: int = 0) -> str:
        query = {"expires": expires, "signature": self._sign("PUT", file_key, upload_id, part, expires)}
        if upload_id:
            query = {"upload_id": upload_id, "part_number": part, **query}
        return f"{request.host_url}_storage/upload/{quote(file_key)}?{urlencode(query)}"

    def _file_url(self, request: Request) -> Callable[[int, str], str]:
        expires = int(time.time()) + DOWNLOAD_URL_SECONDS

        def url(file_id: int, filename: str) -> str:
            signature = self._sign("GET", file_id, expires)
            return f"{request.host_url}_storage/files/{file_id}/{quote(filename)}?expires={expires}&signature={signature}"

        return url

    def _page(self, request: Request) -> tuple[int, int, int]:
        try:
            page = int(request.args.get("page", 1))
            size = min(int(request.args.get("page_size", 100)), MAX_PAGE_SIZE)
        except ValueError:
            raise ApiError(404, "Invalid page.") from None
        if page < 1 or size < 1:
            raise ApiError(404, "Invalid page.")
        return page, size, (page - 1) * size

    def _paginated(self, request: Request, page: int, size: int, count: int, results: list[Any]) -> Response:
        if page > 1 and not results:
            raise ApiError(404, "Invalid page.")

        def link(number: int) -> str | None:
            if number < 1 or (number - 1) * size >= count:
                return None
            args = request.args.copy()
            args["page"] = str(number)
            args["page_size"] = str(size)
            return f"{request.base_url}?{urlencode(list(args.items(multi=True)))}"

        return json_response({"count": count, "next": link(page + 1), "previous": link(page - 1), "results": results})

    # --- collections, storages, projects --------------------------------------------------------

    def list_collections(self, request: Request) -> Response:
        page, size, offset = self._page(request)
        count, results = self.store.list_collections(offset, size)
        return self._paginated(request, page, size, count, results)

    def get_collection(self, request: Request, pk: int) -> Response:
        return json_response(self.store.get_collection(pk))

    def list_storages(self, request: Request) -> Response:
        with_config = request.args.get("with_configuration", "").lower() == "true"
        results = self.store.list_storages(request.args.get("category"), with_config)
        return json_response({"count": len(results), "next": None, "previous": None, "results": results})

    def get_storage(self, request: Request, pk: int) -> Response:
        with_config = request.args.get("with_configuration", "").lower() == "true"
        return json_response(self.store.get_storage(pk, with_config))

    def storage_session(self, request: Request, pk: int) -> Response:
        storage = self.store.get_storage(pk, True)
        return json_response(
            {"provider": storage["provider"], "configuration": storage["configuration"], "expires_at": None, "contract_version": 1}
        )

    def get_project(self, request: Request, pk: int) -> Response:
        return json_response(self.store.get_project(pk))

    # --- uploads --------------------------------------------------------------------------------

    def presigned_upload(self, request: Request) -> Response:
        body = _json_body(request)
        planned = self.store.request_uploads(body.get("files"), body.get("expiration", 3600))
        files = []
        expires = int(time.time()) + int(body.get("expiration", 3600))
        for p in planned:
            entry: dict[str, Any] = {"filename": p["filename"], "file_key": p["file_key"], "presigned_url": None, "multipart": None}
            if p["upload_id"]:
                entry["multipart"] = {
                    "upload_id": p["upload_id"],
                    "part_size": p["part_size"],
                    "parts": [
                        {"part_number": n, "presigned_url": self._upload_url(request, p["file_key"], expires, p["upload_id"], n)}
                        for n in range(1, p["parts"] + 1)
                    ],
                }
            else:
                entry["presigned_url"] = self._upload_url(request, p["file_key"], expires)
            files.append(entry)
        return json_response({"files": files, "expires_at": planned[0]["expires_at"]})

    def storage_put(self, request: Request, file_key: str) -> Response:
        upload_id = request.args.get("upload_id", "")
        try:
            part = int(request.args.get("part_number", 0))
        except ValueError:
            return s3_error(400, "InvalidArgument", "part_number must be an integer")
        denied = self._signed_ok(request, "PUT", file_key, upload_id, part)
        if denied is not None:
            _drain(request)
            return denied
        try:
            if upload_id:
                etag = self.store.receive_part(file_key, upload_id, part, request.stream)
            else:
                etag = self.store.receive_upload(file_key, request.stream)
        except ApiError as exc:
            _drain(request)
            code = "NoSuchUpload" if exc.status == 404 else "InvalidRequest"
            return s3_error(exc.status, code, str(exc.body.get("detail", exc.body)))
        return Response(b"", 200, headers={"ETag": f'"{etag}"'})

    def storage_get(self, request: Request, pk: int, name: str) -> Response:
        denied = self._signed_ok(request, "GET", pk)
        if denied is not None:
            return denied
        try:
            path, _filename = self.store.data_file_path(pk)
        except ApiError:
            return s3_error(404, "NoSuchKey", "The specified key does not exist.")
        return Response(_iter_file(path), 200, mimetype="application/octet-stream",
                        headers={"Content-Length": str(path.stat().st_size)}, direct_passthrough=True)

    def confirm_upload(self, request: Request) -> Response:
        results = self.store.confirm_uploads(_json_body(request).get("files"))
        ok = sum(1 for r in results if r["success"])
        return json_response({"results": results, "created_count": ok, "failed_count": len(results) - ok})

    def create_data_file(self, request: Request) -> Response:
        if request.mimetype == "application/json":
            return json_response(self.store.data_file_from_chunked(_json_body(request).get("chunked_upload")), 201)
        upload = request.files.get("file")
        if upload is None:
            if "chunked_upload" in request.form:
                return json_response(self.store.data_file_from_chunked(request.form["chunked_upload"]), 201)
            raise ApiError(400, {"file": ["No file was submitted."]})
        return json_response(self.store.create_data_file(upload.filename or "file", upload.stream), 201)

    def get_data_file(self, request: Request, pk: int) -> Response:
        return json_response(self.store.data_file(pk))

    def verify_checksums(self, request: Request) -> Response:
        return json_response({"existing_checksums": self.store.existing_checksums(_json_body(request).get("checksums"))})

    def chunked_put(self, request: Request, upload_id: str | None = None) -> Response:
        upload = request.files.get("file")
        if upload is None:
            raise ApiError(400, {"file": ["No file was submitted."]})
        state = self.store.chunk(upload_id, request.form.get("filename", ""), request.headers.get("Content-Range"), upload.stream)
        return json_response({**state, "url": f"{request.host_url}chunked_upload/{state['id']}/"})

    def chunked_finalize(self, request: Request, upload_id: str) -> Response:
        return json_response(self.store.finalize_chunked(upload_id, _json_body(request).get("md5")))

    def chunked_get(self, request: Request, upload_id: str) -> Response:
        return json_response(self.store.chunked_state(upload_id))

    # --- data units and tasks -------------------------------------------------------------------

    def create_units(self, request: Request) -> Response:
        body = _json_body(request, allow_list=True)
        if isinstance(body, list):
            return json_response(self.store.create_units(body), 201)
        try:
            return json_response(self.store.create_units([body])[0], 201)
        except ApiError as exc:  # one object in, one error object out
            raise ApiError(exc.status, exc.body[0] if isinstance(exc.body, list) else exc.body) from None

    def list_units(self, request: Request) -> Response:
        page, size, offset = self._page(request)
        collection = request.args.get("data_collection")
        try:
            collection_id = int(collection) if collection not in (None, "") else None
        except ValueError:
            raise ApiError(400, {"data_collection": ["Select a valid choice."]}) from None
        count, results = self.store.list_units(collection_id, offset, size, self._file_url(request))
        return self._paginated(request, page, size, count, results)

    def get_unit(self, request: Request, pk: int) -> Response:
        return json_response(self.store.unit(pk, self._file_url(request)))

    def create_tasks(self, request: Request) -> Response:
        body = _json_body(request)
        return json_response(self.store.create_tasks(body.get("project"), body.get("data")), 201)

    def list_tasks(self, request: Request) -> Response:
        page, size, offset = self._page(request)
        project = request.args.get("project")
        count, results = self.store.list_tasks(int(project) if project and project.isdigit() else None, offset, size)
        return self._paginated(request, page, size, count, results)

    # --- control panel --------------------------------------------------------------------------

    def admin_health(self, request: Request) -> Response:
        return json_response({"status": "ok", "service": "synapse-sandbox", "data_dir": str(self.store.data_dir)})

    def admin_seed(self, request: Request) -> Response:
        return json_response({"seeded": self.store.apply_seed(_json_body(request))})

    def admin_get_faults(self, request: Request) -> Response:
        return json_response({"rules": self.faults.describe()})

    def admin_put_faults(self, request: Request) -> Response:
        body = _json_body(request)
        self.faults.configure(body.get("rules", []), body.get("seed"))
        return json_response({"rules": self.faults.describe()})

    def admin_stats(self, request: Request) -> Response:
        """Requests per route, records per kind, and API concurrency (``?reset_peak=1`` starts a new peak)."""
        with self._stats_lock:
            requests = dict(self.requests)
            concurrency = {"api_in_flight": self.api_in_flight, "api_peak": self.api_peak,
                           "api_peak_routes": self.api_peak_routes}
            if request.args.get("reset_peak"):
                self.api_peak, self.api_peak_routes = self.api_in_flight, sorted(self._in_flight.values())
        return json_response({"requests": requests, "counts": self.store.counts(), "faults": self.faults.describe(),
                              "concurrency": concurrency})

    def admin_get_config(self, request: Request) -> Response:
        return json_response(vars(self.store.settings()))

    def admin_put_config(self, request: Request) -> Response:
        return json_response(vars(self.store.update_settings(_json_body(request))))


def _json_body(request: Request, allow_list: bool = False) -> Any:
    try:
        body = json.loads(request.get_data(cache=True) or b"{}")
    except ValueError:
        raise ApiError(400, "JSON parse error - the request body is not valid JSON.") from None
    if isinstance(body, dict) or (allow_list and isinstance(body, list)):
        return body
    raise ApiError(400, "Expected a JSON object" + (" or a list of objects." if allow_list else "."))


def _drain(request: Request) -> None:
    """Read an unwanted body so the connection stays usable for keep-alive clients."""
    stream = request.stream
    while stream.read(2**20):
        pass


def _drop_connection(environ: dict[str, Any]) -> None:
    sock = environ.get("werkzeug.socket")
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def _reset_connection(environ: dict[str, Any]) -> None:
    """Close the connection with SO_LINGER 0, which sends a TCP RST instead of a FIN.

    The server still holds the socket object, so its descriptor is not closed but replaced by /dev/null
    (``dup2`` closes the connection): the server's own later write and close then touch /dev/null, never a
    descriptor that another connection has been given meanwhile.
    """
    sock = environ.get("werkzeug.socket")
    if sock is None:
        return
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        null = os.open(os.devnull, os.O_RDWR)
        try:
            os.dup2(null, sock.fileno())
        finally:
            os.close(null)
    except OSError:
        pass


def _iter_file(path: Path, chunk: int = 2**20):
    with path.open("rb") as handle:
        while data := handle.read(chunk):
            yield data
