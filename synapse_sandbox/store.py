"""The sandbox backend's state: collections, storages, uploads, data files, units, projects and tasks.

Plain domain operations over one SQLite database and a folder of blobs, with no HTTP in sight, so the
rules the real backend enforces (meta-schema validation, checksum-checked confirms, all-or-nothing
unit creation) are testable on their own. Every write is one transaction: an operation either
commits completely or leaves nothing behind, which is what lets the HTTP layer promise it never
answers 5xx after a commit.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
import sqlite3
import threading
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from jsonschema import exceptions as js_exceptions
from jsonschema import validators

LOCAL_PROVIDERS = {"file_system", "local"}
DEFAULT_MULTIPART_THRESHOLD = 100 * 2**20  # what the SDK's docstring says the real backend uses
DEFAULT_PART_SIZE = 100 * 2**20
_COPY_CHUNK = 2**20

_SCHEMA = """
create table if not exists storages (
    id integer primary key, name text not null, category text not null, provider text not null,
    configuration text not null, is_default integer not null default 0
);
create table if not exists data_collections (
    id integer primary key, name text not null, file_specifications text not null, meta text not null,
    created_at text not null
);
create table if not exists projects (
    id integer primary key, title text not null, data_collection integer, extra text not null
);
create table if not exists uploads (
    file_key text primary key, filename text not null, size integer not null, content_type text,
    path text not null, upload_id text, part_size integer, parts integer,
    received integer not null default 0, sha1 text, md5 text, data_file_id integer,
    expires_at text not null, created_at text not null
);
create table if not exists upload_parts (
    upload_id text not null, part_number integer not null, etag text not null, size integer not null,
    primary key (upload_id, part_number)
);
create table if not exists data_files (
    id integer primary key autoincrement, file_key text, filename text not null, checksum text not null,
    md5 text not null, size integer not null, path text not null, created_at text not null
);
create index if not exists data_files_checksum on data_files (checksum);
create index if not exists data_files_md5 on data_files (md5);
create table if not exists chunked_uploads (
    id text primary key, filename text not null, "offset" integer not null, total integer,
    path text not null, md5 text, completed_at text, data_file_id integer, created_at text not null
);
create table if not exists data_units (
    id integer primary key autoincrement, data_collection integer not null, meta text not null,
    files text not null, groups_ text, created_at text not null
);
create index if not exists data_units_collection on data_units (data_collection, id);
create table if not exists tasks (
    id integer primary key autoincrement, project integer not null, data_unit integer not null,
    created_at text not null
);
create table if not exists settings (name text primary key, value text not null);
"""


class ApiError(Exception):
    """A client error with the HTTP status and a DRF-shaped body (``{"detail": ...}`` or field errors)."""

    def __init__(self, status: int, detail: Any) -> None:
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.body = detail if isinstance(detail, (dict, list)) else {"detail": detail}


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Settings:
    multipart_threshold: int = DEFAULT_MULTIPART_THRESHOLD
    part_size: int = DEFAULT_PART_SIZE


class SandboxStore:
    """Thread-safe: one SQLite connection behind a lock; blob bytes are streamed outside it."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.resolve()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.blob_dir = self.data_dir / "blobs"
        self.tmp_dir = self.data_dir / "tmp"
        self.blob_dir.mkdir(exist_ok=True)
        self.tmp_dir.mkdir(exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(
            str(self.data_dir / "sandbox.sqlite3"), check_same_thread=False, isolation_level=None, timeout=30
        )
        self._db.row_factory = sqlite3.Row
        self._db.execute("pragma journal_mode=wal")
        self._db.execute("pragma synchronous=normal")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("begin immediate")
            try:
                yield self._db
            except BaseException:
                self._db.execute("rollback")
                raise
            self._db.execute("commit")

    def _one(self, sql: str, args: tuple = ()) -> sqlite3.Row | None:
        with self._lock:
            return self._db.execute(sql, args).fetchone()

    def _all(self, sql: str, args: tuple = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    # --- settings -----------------------------------------------------------------------------

    def settings(self) -> Settings:
        values = {r["name"]: int(r["value"]) for r in self._all("select name, value from settings")}
        return Settings(**{k: v for k, v in values.items() if k in Settings.__dataclass_fields__})

    def update_settings(self, changes: Mapping[str, Any]) -> Settings:
        unknown = set(changes) - set(Settings.__dataclass_fields__)
        if unknown:
            raise ApiError(400, {name: ["unknown setting"] for name in sorted(unknown)})
        for name, value in changes.items():
            if not isinstance(value, int) or value < 1:
                raise ApiError(400, {name: ["must be a positive integer (bytes)"]})
        with self._tx() as db:
            db.executemany(
                "insert into settings values (?, ?) on conflict (name) do update set value = excluded.value",
                [(k, str(v)) for k, v in changes.items()],
            )
        return self.settings()

    # --- seed -----------------------------------------------------------------------------------

    def apply_seed(self, seed: Mapping[str, Any]) -> dict[str, int]:
        """Create or replace storages, data collections and projects by ID (re-seeding is harmless)."""
        unknown = set(seed) - {"storages", "data_collections", "projects", "settings"}
        if unknown:
            raise ApiError(400, {k: ["unknown seed section; use storages, data_collections, projects, settings"] for k in unknown})
        counts = {}
        with self._tx() as db:
            for index, raw in enumerate(seed.get("storages") or []):
                sid = _seed_id(raw, "storages", index)
                category = raw.get("category", "internal")
                if category not in ("internal", "external"):
                    raise ApiError(400, {"storages": [f"#{index + 1}: category must be 'internal' or 'external'"]})
                db.execute(
                    "insert or replace into storages values (?, ?, ?, ?, ?, ?)",
                    (sid, raw.get("name") or f"storage {sid}", category, raw.get("provider") or "file_system",
                     json.dumps(raw.get("configuration") or {}), int(bool(raw.get("is_default")))),
                )
            for index, raw in enumerate(seed.get("data_collections") or []):
                cid = _seed_id(raw, "data_collections", index)
                specs = _normalize_specs(raw.get("file_specifications") or [], cid)
                meta = raw.get("meta") or {}
                schema = meta.get("data_unit_meta_schema")
                if schema and raw.get("check_schema", True):  # false: keep a broken schema, to test a client with it
                    _check_schema(schema, cid)
                db.execute(
                    "insert or replace into data_collections values (?, ?, ?, ?, ?)",
                    (cid, raw.get("name") or f"collection {cid}", json.dumps(specs), json.dumps(meta), now_iso()),
                )
            for index, raw in enumerate(seed.get("projects") or []):
                pid = _seed_id(raw, "projects", index)
                extra = {k: v for k, v in raw.items() if k not in ("id", "title", "name", "data_collection")}
                db.execute(
                    "insert or replace into projects values (?, ?, ?, ?)",
                    (pid, raw.get("title") or raw.get("name") or f"project {pid}", raw.get("data_collection"), json.dumps(extra)),
                )
        if seed.get("settings"):
            self.update_settings(seed["settings"])
        for section in ("storages", "data_collections", "projects"):
            counts[section] = len(seed.get(section) or [])
        return counts

    # --- storages -------------------------------------------------------------------------------

    def _storage_dict(self, row: sqlite3.Row, with_configuration: bool) -> dict[str, Any]:
        out = {
            "id": row["id"],
            "name": row["name"],
            "category": row["category"],
            "provider": row["provider"],
            "is_default": bool(row["is_default"]),
        }
        if with_configuration:
            out["configuration"] = json.loads(row["configuration"])
        return out

    def list_storages(self, category: str | None, with_configuration: bool) -> list[dict[str, Any]]:
        sql, args = "select * from storages", ()
        if category:
            sql, args = sql + " where category = ?", (category,)
        return [self._storage_dict(r, with_configuration) for r in self._all(sql + " order by id", args)]

    def get_storage(self, storage_id: int, with_configuration: bool) -> dict[str, Any]:
        row = self._one("select * from storages where id = ?", (storage_id,))
        if row is None:
            raise ApiError(404, "Not found.")
        return self._storage_dict(row, with_configuration)

    def _upload_root(self) -> Path:
        """Where uploaded bytes land: the default storage's folder when it is local, else the data dir."""
        row = self._one("select * from storages order by is_default desc, id limit 1")
        if row is not None and row["provider"] in LOCAL_PROVIDERS:
            location = json.loads(row["configuration"]).get("location")
            if location:
                return Path(location).expanduser()
        return self.blob_dir

    # --- collections and projects ---------------------------------------------------------------

    def _collection_dict(self, row: sqlite3.Row) -> dict[str, Any]:
        return {
            "id": row["id"],
            "name": row["name"],
            "file_specifications": json.loads(row["file_specifications"]),
            "meta": json.loads(row["meta"]),
            "created": row["created_at"],
        }

    def get_collection(self, collection_id: int) -> dict[str, Any]:
        row = self._one("select * from data_collections where id = ?", (collection_id,))
        if row is None:
            raise ApiError(404, "Not found.")
        return self._collection_dict(row)

    def list_collections(self, offset: int, limit: int) -> tuple[int, list[dict[str, Any]]]:
        count = self._one("select count(*) from data_collections")[0]
        rows = self._all("select * from data_collections order by id limit ? offset ?", (limit, offset))
        return count, [self._collection_dict(r) for r in rows]

    def get_project(self, project_id: int) -> dict[str, Any]:
        row = self._one("select * from projects where id = ?", (project_id,))
        if row is None:
            raise ApiError(404, "Not found.")
        return {"id": row["id"], "title": row["title"], "data_collection": row["data_collection"], **json.loads(row["extra"])}

    # --- presigned upload -----------------------------------------------------------------------

    def request_uploads(self, files: Any, expiration: Any) -> list[dict[str, Any]]:
        """Register one upload per requested file; returns file_key plus either a part count or none."""
        if not isinstance(files, list) or not files:
            raise ApiError(400, {"files": ["This field is required and must be a non-empty list."]})
        if not isinstance(expiration, int) or not 60 <= expiration <= 86400:
            raise ApiError(400, {"expiration": ["Must be an integer between 60 and 86400 seconds."]})
        settings = self.settings()
        root = self._upload_root()
        expires_at = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=expiration)).isoformat()
        planned = []
        errors: list[dict[str, Any]] = []
        for item in files:
            item_errors: dict[str, list[str]] = {}
            if not isinstance(item, dict):
                errors.append({"non_field_errors": ["Expected an object."]})
                continue
            filename, size = item.get("filename"), item.get("size")
            if not isinstance(filename, str) or not filename.strip():
                item_errors["filename"] = ["This field is required."]
            if not isinstance(size, int) or size < 0:
                item_errors["size"] = ["Must be a non-negative integer."]
            errors.append(item_errors)
            if item_errors:
                continue
            key = _new_file_key(filename)
            multipart = size > settings.multipart_threshold
            parts = max(1, -(-size // settings.part_size)) if multipart else None
            planned.append({
                "filename": filename,
                "file_key": key,
                "size": size,
                "content_type": item.get("content_type"),
                "path": str(root / key),
                "upload_id": uuid.uuid4().hex if multipart else None,
                "part_size": settings.part_size if multipart else None,
                "parts": parts,
                "expires_at": expires_at,
            })
        if any(errors):
            raise ApiError(400, {"files": errors})
        with self._tx() as db:
            db.executemany(
                "insert into uploads (file_key, filename, size, content_type, path, upload_id, part_size, parts, "
                "expires_at, created_at) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(p["file_key"], p["filename"], p["size"], p["content_type"], p["path"], p["upload_id"],
                  p["part_size"], p["parts"], p["expires_at"], now_iso()) for p in planned],
            )
        return planned

    def _upload(self, file_key: str) -> sqlite3.Row:
        row = self._one("select * from uploads where file_key = ?", (file_key,))
        if row is None:
            raise ApiError(404, "NoSuchUpload")
        return row

    def receive_upload(self, file_key: str, stream: BinaryIO) -> str:
        """Store a single-PUT body; returns its ETag (MD5, as S3 does)."""
        upload = self._upload(file_key)
        if upload["upload_id"]:
            raise ApiError(400, "this key expects a multipart upload; PUT its parts")
        target = Path(upload["path"])
        size, sha1, md5 = _write_stream(stream, target, self.tmp_dir)
        with self._tx() as db:
            db.execute(
                "update uploads set received = ?, sha1 = ?, md5 = ? where file_key = ?", (size, sha1, md5, file_key)
            )
        return md5

    def receive_part(self, file_key: str, upload_id: str, part_number: int, stream: BinaryIO) -> str:
        upload = self._upload(file_key)
        if upload["upload_id"] != upload_id:
            raise ApiError(404, "NoSuchUpload")
        if not 1 <= part_number <= (upload["parts"] or 0):
            raise ApiError(400, f"part_number must be between 1 and {upload['parts']}")
        target = self._part_path(upload_id, part_number)
        size, _sha1, md5 = _write_stream(stream, target, self.tmp_dir)
        with self._tx() as db:
            db.execute(
                "insert or replace into upload_parts values (?, ?, ?, ?)", (upload_id, part_number, f'"{md5}"', size)
            )
        return md5

    def _part_path(self, upload_id: str, part_number: int) -> Path:
        return self.tmp_dir / "parts" / upload_id / f"{part_number:05d}"

    def confirm_uploads(self, files: Any) -> list[dict[str, Any]]:
        """Check each uploaded file against its SHA1 and size, then create its DataFile (once per key)."""
        if not isinstance(files, list) or not files:
            raise ApiError(400, {"files": ["This field is required and must be a non-empty list."]})
        results = []
        for item in files:
            key = item.get("file_key") if isinstance(item, dict) else None
            try:
                if not isinstance(key, str):
                    raise ApiError(400, "file_key is required")
                file_id, checksum = self._confirm_one(key, item)
                results.append({"file_key": key, "checksum": checksum, "data_file_id": file_id, "success": True, "error": None})
            except ApiError as exc:
                message = exc.body.get("detail") if isinstance(exc.body, dict) else str(exc.body)
                results.append({
                    "file_key": key if isinstance(key, str) else "",
                    "checksum": str(item.get("checksum", "")) if isinstance(item, dict) else "",
                    "data_file_id": None,
                    "success": False,
                    "error": str(message),
                })
        return results

    def _confirm_one(self, key: str, item: dict[str, Any]) -> tuple[int, str]:
        upload = self._upload(key)
        if upload["data_file_id"] is not None:  # a retried confirm: same DataFile, no duplicate
            return upload["data_file_id"], upload["sha1"]
        claimed, size = item.get("checksum"), item.get("size")
        if upload["upload_id"]:
            sha1, md5, received = self._assemble(upload, item.get("multipart"))
        else:
            sha1, md5, received = upload["sha1"], upload["md5"], upload["received"]
            if sha1 is None:
                raise ApiError(400, "no bytes were uploaded for this file_key")
        if received != upload["size"] or (size is not None and size != received):
            raise ApiError(400, f"size mismatch: announced {upload['size']}, received {received} bytes")
        if claimed != sha1:
            raise ApiError(400, f"checksum mismatch: the stored bytes have SHA1 {sha1}")
        with self._tx() as db:
            cursor = db.execute(
                "insert into data_files (file_key, filename, checksum, md5, size, path, created_at) values (?, ?, ?, ?, ?, ?, ?)",
                (key, upload["filename"], sha1, md5, received, upload["path"], now_iso()),
            )
            file_id = cursor.lastrowid
            db.execute("update uploads set data_file_id = ?, sha1 = ?, md5 = ?, received = ? where file_key = ?",
                       (file_id, sha1, md5, received, key))
        return file_id, sha1

    def _assemble(self, upload: sqlite3.Row, multipart: Any) -> tuple[str, str, int]:
        if not isinstance(multipart, dict) or multipart.get("upload_id") != upload["upload_id"]:
            raise ApiError(400, "multipart.upload_id is missing or does not match this file_key")
        stored = {r["part_number"]: r["etag"] for r in self._all(
            "select part_number, etag from upload_parts where upload_id = ?", (upload["upload_id"],))}
        claimed = multipart.get("parts") or []
        numbers = [p.get("part_number") for p in claimed if isinstance(p, dict)]
        if numbers != list(range(1, upload["parts"] + 1)):
            raise ApiError(400, f"multipart.parts must list parts 1..{upload['parts']} in order")
        for part in claimed:
            if stored.get(part["part_number"]) != part.get("etag"):
                raise ApiError(400, f"part {part['part_number']}: ETag does not match the uploaded part (InvalidPart)")
        def parts() -> Iterator[bytes]:
            for number in numbers:
                with self._part_path(upload["upload_id"], number).open("rb") as part:
                    yield from _chunks(part)

        size, sha1, md5 = _write_chunks(parts(), Path(upload["path"]), self.tmp_dir)
        shutil.rmtree(self.tmp_dir / "parts" / upload["upload_id"], ignore_errors=True)
        return sha1, md5, size

    # --- direct and chunked data files ----------------------------------------------------------

    def create_data_file(self, filename: str, stream: BinaryIO) -> dict[str, Any]:
        key = _new_file_key(filename)
        target = self._upload_root() / key
        size, sha1, md5 = _write_stream(stream, target, self.tmp_dir)
        return self._insert_data_file(key, filename, sha1, md5, size, target)

    def _insert_data_file(self, key: str, filename: str, sha1: str, md5: str, size: int, path: Path) -> dict[str, Any]:
        with self._tx() as db:
            cursor = db.execute(
                "insert into data_files (file_key, filename, checksum, md5, size, path, created_at) values (?, ?, ?, ?, ?, ?, ?)",
                (key, filename, sha1, md5, size, str(path), now_iso()),
            )
        return self.data_file(cursor.lastrowid)

    def data_file(self, file_id: int) -> dict[str, Any]:
        row = self._one("select * from data_files where id = ?", (file_id,))
        if row is None:
            raise ApiError(404, "Not found.")
        return {"id": row["id"], "checksum": row["checksum"], "size": row["size"], "file": row["file_key"],
                "created_at": row["created_at"], "filename": row["filename"]}

    def data_file_path(self, file_id: int) -> tuple[Path, str]:
        row = self._one("select path, filename from data_files where id = ?", (file_id,))
        if row is None:
            raise ApiError(404, "Not found.")
        return Path(row["path"]), row["filename"]

    def chunk(self, upload_id: str | None, filename: str, content_range: str | None, stream: BinaryIO) -> dict[str, Any]:
        start, end, total = _parse_content_range(content_range)
        if upload_id is None:
            if start != 0:
                raise ApiError(400, "a new chunked upload must start at byte 0")
            upload_id = uuid.uuid4().hex
            path = self.tmp_dir / "chunked" / upload_id
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()
            with self._tx() as db:
                db.execute("insert into chunked_uploads (id, filename, \"offset\", total, path, created_at) values (?, ?, 0, ?, ?, ?)",
                           (upload_id, filename or "upload", total, str(path), now_iso()))
        row = self._chunked(upload_id)
        if row["completed_at"]:
            raise ApiError(400, "this chunked upload is already complete")
        if start != row["offset"]:
            raise ApiError(400, {"offset": row["offset"], "detail": f"expected the chunk at byte {row['offset']}, got {start}"})
        with open(row["path"], "ab") as out:
            written = 0
            while chunk := stream.read(_COPY_CHUNK):
                out.write(chunk)
                written += len(chunk)
        if written != end - start + 1:
            with open(row["path"], "r+b") as out:
                out.truncate(row["offset"])
            raise ApiError(400, f"Content-Range announced {end - start + 1} bytes, received {written}")
        with self._tx() as db:
            db.execute("update chunked_uploads set \"offset\" = ? where id = ?", (end + 1, upload_id))
        return self.chunked_state(upload_id)

    def _chunked(self, upload_id: str) -> sqlite3.Row:
        row = self._one("select * from chunked_uploads where id = ?", (upload_id,))
        if row is None:
            raise ApiError(404, "Not found.")
        return row

    def chunked_state(self, upload_id: str) -> dict[str, Any]:
        row = self._chunked(upload_id)
        return {"id": row["id"], "filename": row["filename"], "offset": row["offset"],
                "completed_at": row["completed_at"], "status": 2 if row["completed_at"] else 1}

    def finalize_chunked(self, upload_id: str, md5: Any) -> dict[str, Any]:
        row = self._chunked(upload_id)
        if row["completed_at"]:
            return {**self.chunked_state(upload_id), "checksum": row["md5"], "size": row["offset"]}
        digest_md5, digest_sha1 = hashlib.md5(), hashlib.sha1()
        with open(row["path"], "rb") as handle:
            while chunk := handle.read(_COPY_CHUNK):
                digest_md5.update(chunk)
                digest_sha1.update(chunk)
        if md5 != digest_md5.hexdigest():
            raise ApiError(400, {"md5": ["MD5 of the received bytes does not match"]})
        if row["total"] is not None and row["offset"] != row["total"]:
            raise ApiError(400, f"only {row['offset']} of {row['total']} bytes were received")
        with self._tx() as db:
            db.execute("update chunked_uploads set completed_at = ?, md5 = ? where id = ?", (now_iso(), md5, upload_id))
        return {**self.chunked_state(upload_id), "checksum": md5, "size": row["offset"], "sha1": digest_sha1.hexdigest()}

    def data_file_from_chunked(self, upload_id: Any) -> dict[str, Any]:
        row = self._one("select * from chunked_uploads where id = ?", (str(upload_id),))
        if row is None:
            raise ApiError(400, {"chunked_upload": [f'Invalid pk "{upload_id}" - object does not exist.']})
        if not row["completed_at"]:
            raise ApiError(400, {"chunked_upload": ["The chunked upload is not complete."]})
        if row["data_file_id"] is not None:
            return self.data_file(row["data_file_id"])
        key = _new_file_key(row["filename"])
        target = self._upload_root() / key
        with open(row["path"], "rb") as handle:
            size, sha1, md5 = _write_stream(handle, target, self.tmp_dir)
        created = self._insert_data_file(key, row["filename"], sha1, md5, size, target)
        with self._tx() as db:
            db.execute("update chunked_uploads set data_file_id = ? where id = ?", (created["id"], row["id"]))
        Path(row["path"]).unlink(missing_ok=True)
        return created

    def existing_checksums(self, checksums: Any) -> list[str]:
        if not isinstance(checksums, list):
            raise ApiError(400, {"checksums": ["Expected a list of checksums."]})
        found = []
        for value in checksums:
            if isinstance(value, str) and self._one(
                "select 1 from data_files where checksum = ? or md5 = ? limit 1", (value, value)
            ):
                found.append(value)
        return found

    # --- data units -----------------------------------------------------------------------------

    def create_units(self, items: list[Any]) -> list[dict[str, Any]]:
        """Validate every item, then create all of them or none (a DRF ``many=True`` serializer)."""
        collections: dict[int, dict[str, Any]] = {}
        resolved, errors = [], []
        for item in items:
            item_errors, files = self._check_unit(item, collections)
            errors.append(item_errors)
            resolved.append(files)
        if any(errors):
            raise ApiError(400, errors)
        now = now_iso()
        created_ids = []
        with self._tx() as db:
            for item, files in zip(items, resolved):
                cursor = db.execute(
                    "insert into data_units (data_collection, meta, files, groups_, created_at) values (?, ?, ?, ?, ?)",
                    (item["data_collection"], json.dumps(item.get("meta") or {}), json.dumps(files),
                     json.dumps(item.get("groups")) if item.get("groups") is not None else None, now),
                )
                created_ids.append(cursor.lastrowid)
        return [self.unit(i, None) for i in created_ids]

    def _check_unit(self, item: Any, collections: dict[int, dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
        if not isinstance(item, dict):
            return {"non_field_errors": ["Invalid data. Expected a dictionary."]}, {}
        errors: dict[str, Any] = {}
        unknown = set(item) - {"data_collection", "files", "meta", "groups"}
        for name in sorted(unknown):
            errors[name] = ["Unknown field."]
        cid = item.get("data_collection")
        collection = None
        if not isinstance(cid, int) or isinstance(cid, bool):
            errors["data_collection"] = ["A valid integer is required."]
        else:
            if cid not in collections:
                try:
                    collections[cid] = self.get_collection(cid)
                except ApiError:
                    errors["data_collection"] = [f'Invalid pk "{cid}" - object does not exist.']
            collection = collections.get(cid)
        files = item.get("files")
        resolved: dict[str, Any] = {}
        if not isinstance(files, dict) or not files:
            errors["files"] = ["This field is required and must map spec names to files."]
        elif collection is not None:
            specs = {s["name"]: s for s in collection["file_specifications"]}
            file_errors: dict[str, list[str]] = {}
            for spec_name, ref in files.items():
                if spec_name not in specs:
                    file_errors[spec_name] = [f"Unknown file specification; this collection has {sorted(specs)}."]
                    continue
                checksum = ref.get("checksum") if isinstance(ref, dict) else None
                if not isinstance(checksum, str) or not checksum:
                    file_errors[spec_name] = ["checksum is required."]
                    continue
                row = self._one("select id from data_files where checksum = ? order by id desc limit 1", (checksum,))
                if row is None:
                    file_errors[spec_name] = [f"No uploaded data file has checksum {checksum}."]
                    continue
                resolved[spec_name] = {"data_file": row["id"], "path": ref.get("path")}
            for name, spec in specs.items():
                if spec.get("is_required") and name not in files:
                    file_errors[name] = ["This file specification is required."]
            if file_errors:
                errors["files"] = file_errors
        meta = item.get("meta")
        if meta is not None and not isinstance(meta, dict):
            errors["meta"] = ["Must be an object."]
        elif collection is not None:
            schema = (collection.get("meta") or {}).get("data_unit_meta_schema")
            if schema:
                messages = _schema_errors(meta or {}, schema)
                if messages:
                    errors["meta"] = messages
        groups = item.get("groups")
        if groups is not None and (not isinstance(groups, list) or not all(isinstance(g, str) for g in groups)):
            errors["groups"] = ["Must be a list of group names."]
        return errors, resolved

    def unit(self, unit_id: int, file_url: Any) -> dict[str, Any]:
        row = self._one("select * from data_units where id = ?", (unit_id,))
        if row is None:
            raise ApiError(404, "Not found.")
        return self._unit_dict(row, file_url)

    def _unit_dict(self, row: sqlite3.Row, file_url: Any) -> dict[str, Any]:
        files = {}
        for spec, ref in json.loads(row["files"]).items():
            data_file = self._one("select * from data_files where id = ?", (ref["data_file"],))
            entry = {"data_file": ref["data_file"], "checksum": data_file["checksum"], "size": data_file["size"],
                     "path": ref.get("path") or data_file["file_key"], "file_key": data_file["file_key"]}
            if file_url is not None:
                entry["url"] = file_url(data_file["id"], data_file["filename"])
            files[spec] = entry
        out = {"id": row["id"], "data_collection": row["data_collection"], "meta": json.loads(row["meta"]),
               "files": files, "created": row["created_at"]}
        if row["groups_"]:
            out["groups"] = json.loads(row["groups_"])
        return out

    def list_units(self, collection: int | None, offset: int, limit: int, file_url: Any) -> tuple[int, list[dict[str, Any]]]:
        where, args = ("where data_collection = ?", (collection,)) if collection is not None else ("", ())
        count = self._one(f"select count(*) from data_units {where}", args)[0]
        rows = self._all(f"select * from data_units {where} order by id limit ? offset ?", (*args, limit, offset))
        return count, [self._unit_dict(r, file_url) for r in rows]

    # --- tasks ----------------------------------------------------------------------------------

    def create_tasks(self, project: Any, data: Any) -> list[dict[str, Any]]:
        if not isinstance(project, int):
            raise ApiError(400, {"project": ["A valid integer is required."]})
        if self._one("select 1 from projects where id = ?", (project,)) is None:
            raise ApiError(400, {"project": [f'Invalid pk "{project}" - object does not exist.']})
        if not isinstance(data, list):
            raise ApiError(400, {"data": ["Expected a list of {\"data_unit\": id} items."]})
        unit_ids = []
        for index, item in enumerate(data):
            unit_id = item.get("data_unit") if isinstance(item, dict) else None
            if not isinstance(unit_id, int) or self._one("select 1 from data_units where id = ?", (unit_id,)) is None:
                raise ApiError(400, {"data": [f"item {index}: data_unit {unit_id!r} does not exist."]})
            unit_ids.append(unit_id)
        now = now_iso()
        with self._tx() as db:
            ids = [db.execute("insert into tasks (project, data_unit, created_at) values (?, ?, ?)", (project, u, now)).lastrowid
                   for u in unit_ids]
        return [{"id": i, "project": project, "data_unit": u} for i, u in zip(ids, unit_ids)]

    def list_tasks(self, project: int | None, offset: int, limit: int) -> tuple[int, list[dict[str, Any]]]:
        where, args = ("where project = ?", (project,)) if project is not None else ("", ())
        count = self._one(f"select count(*) from tasks {where}", args)[0]
        rows = self._all(f"select * from tasks {where} order by id limit ? offset ?", (*args, limit, offset))
        return count, [{"id": r["id"], "project": r["project"], "data_unit": r["data_unit"]} for r in rows]

    def counts(self) -> dict[str, int]:
        tables = ("storages", "data_collections", "projects", "uploads", "data_files", "chunked_uploads", "data_units", "tasks")
        return {t: self._one(f"select count(*) from {t}")[0] for t in tables}


# --- helpers ------------------------------------------------------------------------------------


def _seed_id(raw: Any, section: str, index: int) -> int:
    if not isinstance(raw, dict) or not isinstance(raw.get("id"), int) or raw["id"] < 1:
        raise ApiError(400, {section: [f"#{index + 1}: every entry needs a positive integer 'id'"]})
    return raw["id"]


def _normalize_specs(specs: Any, collection_id: int) -> list[dict[str, Any]]:
    if not isinstance(specs, list):
        raise ApiError(400, {"file_specifications": [f"collection {collection_id}: must be a list"]})
    out = []
    for index, spec in enumerate(specs):
        if not isinstance(spec, dict) or not spec.get("name"):
            raise ApiError(400, {"file_specifications": [f"collection {collection_id}, #{index + 1}: needs a 'name'"]})
        out.append({
            "id": spec.get("id") or collection_id * 1000 + index + 1,
            "name": spec["name"],
            "file_type": spec.get("file_type", "data"),
            "extensions": list(spec.get("extensions") or []),
            "is_required": bool(spec.get("is_required", False)),
            "is_primary": bool(spec.get("is_primary", False)),
            "function_type": spec.get("function_type", "main"),
            "index": spec.get("index", index),
        })
    return out


def _check_schema(schema: Any, collection_id: int) -> None:
    try:
        validators.validator_for(schema).check_schema(schema)
    except js_exceptions.SchemaError as exc:
        raise ApiError(400, {"meta": [f"collection {collection_id}: data_unit_meta_schema is invalid: {exc.message}"]}) from None


def _schema_errors(meta: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    cls = validators.validator_for(schema)
    validator = cls(schema, format_checker=cls.FORMAT_CHECKER)
    messages = []
    for error in sorted(validator.iter_errors(meta), key=lambda e: list(map(str, e.absolute_path))):
        where = ".".join(str(p) for p in error.absolute_path)
        messages.append(f"{where}: {error.message}" if where else error.message)
    return messages


def _new_file_key(filename: str) -> str:
    token = uuid.uuid4().hex
    suffix = PurePosixPath(filename.replace("\\", "/")).suffix.lower()
    suffix = suffix if suffix[1:].isalnum() and len(suffix) <= 16 else ""
    return f"tenants/1/files/{token[:2]}/{token[2:4]}/{token}{suffix}"


def _chunks(stream: BinaryIO) -> Iterator[bytes]:
    while chunk := stream.read(_COPY_CHUNK):
        yield chunk


def _write_stream(stream: BinaryIO, target: Path, tmp_dir: Path) -> tuple[int, str, str]:
    return _write_chunks(_chunks(stream), target, tmp_dir)


def _write_chunks(chunks: Iterator[bytes], target: Path, tmp_dir: Path) -> tuple[int, str, str]:
    """Write ``chunks`` to ``target`` atomically (via a temp file), returning size, SHA1 and MD5."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_dir / f"write-{uuid.uuid4().hex}"
    sha1, md5, size = hashlib.sha1(), hashlib.md5(), 0
    try:
        with tmp.open("wb") as out:
            for chunk in chunks:
                sha1.update(chunk)
                md5.update(chunk)
                size += len(chunk)
                out.write(chunk)
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)
    return size, sha1.hexdigest(), md5.hexdigest()


def _parse_content_range(value: str | None) -> tuple[int, int, int | None]:
    try:
        unit, _, rest = (value or "").partition(" ")
        span, _, total = rest.partition("/")
        start, _, end = span.partition("-")
        if unit != "bytes":
            raise ValueError
        return int(start), int(end), (int(total) if total and total != "*" else None)
    except ValueError:
        raise ApiError(400, "a Content-Range header 'bytes START-END/TOTAL' is required") from None
