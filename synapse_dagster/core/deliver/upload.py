"""Uploading a batch's files through the SDK's presigned bulk upload, skipping what is already confirmed.

Files are sent in slices; after each slice the ledger records what the server confirmed, so a crash
or a re-run only sends what never landed. A failure of one slice (the API call itself) marks that
slice's files failed and the rest goes on; per-file failures come back from the SDK as results.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from synapse_sdk.utils.file.content_guard import UnsafeFileContentError

from synapse_dagster.core.sources.files import SourceFile
from synapse_dagster.core.deliver.ledger import ConfirmedFile, Ledger
from synapse_dagster.core.redaction import redact
from synapse_dagster.core.plan.screening import unsafe_reason
from synapse_dagster.core.sources.staging import Stage


class FileStatus:
    UPLOADED = "uploaded"
    ALREADY_UPLOADED = "already_uploaded"
    FAILED = "failed"
    REJECTED = "rejected"  # the content guard refused the staged copy: a data problem, not a delivery failure


@dataclass(frozen=True)
class FileUpload:
    relative_path: str
    fingerprint: str
    size: int
    status: str
    checksum: str | None = None
    data_file_id: int | None = None
    error: str | None = None


@dataclass
class UploadReport:
    files: dict[str, FileUpload]  # by fingerprint
    seconds: float

    def by_status(self, status: str) -> list[FileUpload]:
        return [f for f in self.files.values() if f.status == status]

    @property
    def bytes_sent(self) -> int:
        return sum(f.size for f in self.by_status(FileStatus.UPLOADED))


class BulkUploader(Protocol):
    def upload_files_bulk(self, file_paths: list[Path], **kwargs: Any) -> Any: ...


def local_stage(files: list[SourceFile]) -> AbstractContextManager[Iterable[dict[str, Path]]]:
    """Local files need no copy: one slice of ``{fingerprint: path}``."""
    return nullcontext([{f.fingerprint: Path(f.uri) for f in files}])


def upload_files(
    client: BulkUploader,
    files: Iterable[SourceFile],
    *,
    ledger: Ledger,
    target: str,
    stage: Stage = local_stage,
    screen: Callable[[str], str | None] | None = None,
    stage_failures: dict[str, str] | None = None,
    max_workers: int = 16,
    slice_size: int = 200,
    max_upload_retries: int = 2,
    on_slice_done: Callable[[int, int], None] | None = None,
) -> UploadReport:
    """Upload every file not yet confirmed on ``target``; returns one :class:`FileUpload` per file.

    ``stage`` turns files into local paths a slice at a time (remote sources are copied there, bounded);
    ``screen`` checks each staged copy with the content guard (remote files could not be screened earlier);
    ``stage_failures`` is where ``stage`` records files it could not copy.
    """
    started = time.monotonic()
    unique = {f.fingerprint: f for f in files}
    confirmed = ledger.confirmed_files(target, unique)
    results: dict[str, FileUpload] = {}
    for fp, c in confirmed.items():
        f = unique[fp]
        results[fp] = FileUpload(f.relative_path, fp, f.size, FileStatus.ALREADY_UPLOADED, c.checksum, c.data_file_id)
    todo = [f for fp, f in unique.items() if fp not in confirmed]
    done = 0
    failures = stage_failures if stage_failures is not None else {}
    with stage(todo) as slices:
        for paths in slices:
            staged = [(unique[fp], path) for fp, path in paths.items()]
            for start in range(0, len(staged), slice_size):
                chunk = staged[start : start + slice_size]
                outcome = []
                if screen is not None:
                    unsafe = {fp: reason for fp, reason in ((f.fingerprint, screen(str(p))) for f, p in chunk) if reason}
                    outcome += [_failed(unique[fp], reason, FileStatus.REJECTED) for fp, reason in unsafe.items()]
                    chunk = [(f, p) for f, p in chunk if f.fingerprint not in unsafe]
                outcome += _upload_slice(client, chunk, max_workers=max_workers, max_upload_retries=max_upload_retries)
                ledger.record_files(
                    target,
                    [(u.fingerprint, ConfirmedFile(u.checksum or "", u.data_file_id, u.size))
                     for u in outcome if u.status == FileStatus.UPLOADED],
                )
                results.update({u.fingerprint: u for u in outcome})
                done += len(outcome)
                if on_slice_done:
                    on_slice_done(done, len(todo))
    for fp, reason in failures.items():
        if fp in unique and fp not in results:
            results[fp] = _failed(unique[fp], f"could not be copied from its source: {reason}")
    for fp, f in unique.items():  # a file the stage silently skipped is a failure, never a gap
        results.setdefault(fp, _failed(f, "was not staged for upload; re-run the batch"))
    return UploadReport(files=results, seconds=time.monotonic() - started)


def _upload_slice(
    client: BulkUploader, chunk: list[tuple[SourceFile, Path]], *, max_workers: int, max_upload_retries: int
) -> list[FileUpload]:
    if not chunk:
        return []
    by_path = {str(path): f for f, path in chunk}
    try:
        response = client.upload_files_bulk(
            [Path(p) for p in by_path],
            strategy="presigned",
            max_workers=max(1, min(max_workers, 100)),
            batch_size=max(1, min(len(chunk), 1000)),
            max_upload_retries=max_upload_retries,
        )
    except UnsafeFileContentError:
        # A file changed since it was screened; the SDK refuses the whole call. Drop the unsafe ones, retry the rest.
        unsafe = {str(p): unsafe_reason(str(p)) for _, p in chunk}
        kept = [(f, p) for f, p in chunk if not unsafe[str(p)]]
        failed = [_failed(f, unsafe[str(p)] or "") for f, p in chunk if unsafe[str(p)]]
        if len(kept) == len(chunk):
            return [_failed(f, "the SDK content guard refused the upload") for f, _ in chunk]
        return failed + _upload_slice(client, kept, max_workers=max_workers, max_upload_retries=max_upload_retries)
    except Exception as exc:  # the presigned-request or confirm call failed as a whole
        reason = redact(f"{type(exc).__name__}: {exc}")
        return [_failed(f, f"upload request failed: {reason}") for f, _ in chunk]
    outcome: list[FileUpload] = []
    for result in getattr(response, "results", []) or []:
        f = by_path.pop(str(result.file_key), None)
        if f is None:
            continue
        if result.success and result.checksum:
            outcome.append(
                FileUpload(f.relative_path, f.fingerprint, f.size, FileStatus.UPLOADED, result.checksum, result.data_file_id)
            )
        else:
            outcome.append(_failed(f, redact(result.error or "the server did not confirm the upload")))
    # The SDK silently drops files when the server returns fewer presigned URLs than asked for.
    outcome.extend(_failed(f, "no result returned for this file (not uploaded); re-run the batch") for f in by_path.values())
    return outcome


def _failed(f: SourceFile, error: str, status: str = FileStatus.FAILED) -> FileUpload:
    return FileUpload(f.relative_path, f.fingerprint, f.size, status, error=error)
