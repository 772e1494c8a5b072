"""Uploading a batch's files through the SDK's presigned bulk upload, skipping what is already confirmed.

Files are sent in slices; after each slice the ledger records what the server confirmed, so a crash
or a re-run only sends what never landed. A failure of one slice (the API call itself) marks that
slice's files failed and the rest goes on; per-file failures come back from the SDK as results.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from synapse_sdk.utils.file.content_guard import UnsafeFileContentError

from synapse_dagster.core.sources.files import SourceFile
from synapse_dagster.core.deliver.ledger import ConfirmedFile, Ledger
from synapse_dagster.core.synapse.bulk_upload import UploadTimeouts, upload_presigned
from synapse_dagster.core.redaction import redact
from synapse_dagster.core.plan.batch_plan import BatchPlan
from synapse_dagster.core.plan.content import HOLD_BACK, ContentPolicy
from synapse_dagster.core.plan.screening import look_at_copy, still_as_listed, unsafe_reason
from synapse_dagster.core.sources.staging import Stage


SLICE_ATTEMPTS = 5  # at ~5% per request (the mixed fault test), three in a row failed one run in a few hundred
SLICE_RETRY_DELAY = 1.0  # seconds, doubled per attempt, full jitter
REQUEST_FAILED = "upload request failed"


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

    def by_cause(self, *statuses: str) -> dict[str, list[str]]:
        """The relative paths of the files in ``statuses``, grouped by why, so a cause shared by many files is one
        line of a log or a report."""
        grouped: dict[str, list[str]] = {}
        for f in (f for status in statuses for f in self.by_status(status)):
            grouped.setdefault(f.error or "no reason given", []).append(f.relative_path)
        return grouped

    @property
    def bytes_sent(self) -> int:
        return sum(f.size for f in self.by_status(FileStatus.UPLOADED))


class BulkUploader(Protocol):
    def verify_data_files_checksums(self, checksums: list[str]) -> Any: ...


@dataclass(frozen=True)
class Sending:
    """How slices are sent: threads, PUT retries within one call, and the timeouts."""

    max_workers: int = 16
    max_upload_retries: int = 2
    timeouts: UploadTimeouts = UploadTimeouts()


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
    screen: Screen | None = None,
    stage_failures: dict[str, str] | None = None,
    max_workers: int = 16,
    slice_size: int = 200,
    max_upload_retries: int = 2,
    timeouts: UploadTimeouts = UploadTimeouts(),
    on_slice_done: Callable[[int, int], None] | None = None,
) -> UploadReport:
    """Upload every file not yet confirmed on ``target``; returns one :class:`FileUpload` per file.

    ``stage`` turns files into local paths a slice at a time (remote sources are copied there, bounded);
    ``screen`` looks at each file just before it is sent (see :func:`copy_screen`);
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
    uncertain = ledger.attempted_files(target, [f.fingerprint for f in todo])
    done = 0
    failures = stage_failures if stage_failures is not None else {}
    transfer = _Transfer(client, ledger, target, screen, uncertain, Sending(max_workers, max_upload_retries, timeouts))
    with stage(todo) as slices:
        for paths in slices:
            staged = [(unique[fp], path) for fp, path in paths.items()]
            for start in range(0, len(staged), slice_size):
                outcome = transfer.deliver(staged[start : start + slice_size])
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


class _Transfer:
    """One chunk at a time: screen, ask Synapse about files a lost answer left uncertain, upload the rest, record.

    A file is marked *attempted* in the ledger before its upload request and *confirmed* after the answer, so a
    lost confirm answer, a 5xx or a kill in between leaves a trace: before such a file is sent again, its SHA1 is
    looked up on the server (``verify_data_files_checksums``), and a file that did land is not uploaded twice.
    """

    def __init__(self, client: BulkUploader, ledger: Ledger, target: str, screen: Screen | None,
                 uncertain: set[str], sending: Sending) -> None:
        self.client, self.ledger, self.target, self.screen, self.uncertain = client, ledger, target, screen, uncertain
        self.sending = sending

    def deliver(self, chunk: list[tuple[SourceFile, Path]]) -> list[FileUpload]:
        outcome: list[FileUpload] = []
        if self.screen is not None:
            refused = {f.fingerprint: (f, verdict) for f, p in chunk if (verdict := self.screen(f, p))}
            outcome += [_failed(f, reason, status) for f, (status, reason) in refused.values()]
            chunk = [(f, p) for f, p in chunk if f.fingerprint not in refused]
        doubtful = [(f, p) for f, p in chunk if f.fingerprint in self.uncertain]
        if doubtful:
            known = found_on_server(self.client, doubtful, FileStatus.ALREADY_UPLOADED)
            outcome += known
            settled = {u.fingerprint for u in known}
            chunk = [(f, p) for f, p in chunk if f.fingerprint not in settled]
        outcome += _unchanged_while_sent(self._send(chunk), chunk)
        landed = [u for u in outcome if u.status in (FileStatus.UPLOADED, FileStatus.ALREADY_UPLOADED) and u.checksum]
        self.ledger.record_files(self.target, [(u.fingerprint, ConfirmedFile(u.checksum or "", u.data_file_id, u.size))
                                               for u in landed])
        return outcome


    def _send(self, chunk: list[tuple[SourceFile, Path]]) -> list[FileUpload]:
        """Upload, and send failed files again (with backoff) up to ``SLICE_ATTEMPTS`` times. That is safe: a file
        whose PUT failed was never confirmed (the SDK confirms only finished PUTs, and does not retry multipart
        parts), and one whose whole request failed was looked up on the server first and is not there."""
        outcome: list[FileUpload] = []
        for attempt in range(1, SLICE_ATTEMPTS + 1):
            self.ledger.mark_files_attempted(self.target, [f.fingerprint for f, _ in chunk])
            sent = _upload_slice(self.client, chunk, self.sending)
            again = {u.fingerprint for u in sent if u.status == FileStatus.FAILED and not _refused(u)}
            if not again or attempt == SLICE_ATTEMPTS:
                return outcome + sent
            outcome += [u for u in sent if u.fingerprint not in again]
            chunk = [(f, p) for f, p in chunk if f.fingerprint in again]
            time.sleep(random.uniform(0, SLICE_RETRY_DELAY * 2 ** (attempt - 1)))
        return outcome


def _unchanged_while_sent(sent: list[FileUpload], chunk: list[tuple[SourceFile, Path]]) -> list[FileUpload]:
    """A local file uploaded where it lies may have changed while it was read: the server then holds bytes that
    match neither the listing nor the checksum, so the upload does not count (a re-run lists and sends it anew)."""
    local = {f.fingerprint: f for f, p in chunk if p == Path(f.uri)}
    out = []
    for u in sent:
        changed = still_as_listed(local[u.fingerprint]) if u.fingerprint in local and u.checksum else None
        out.append(_failed(local[u.fingerprint], f"{CHANGED_WHILE_SENT}: it {changed}") if changed else u)
    return out


Screen = Callable[[SourceFile, Path], tuple[str, str] | None]  # (status, reason) to refuse a file, None to send it
CHANGED_WHILE_SENT = "the file changed while it was uploaded, so the upload does not count"


def copy_screen(plan: BatchPlan, policy: ContentPolicy) -> Screen:
    """Look at each file just before it is sent. A local file was looked at when the batch was planned, so only
    its listing is compared; a staged copy of a remote file is looked at in full, here, for the first time."""
    held_back = {f.fingerprint for unit in plan.valid_units for spec, f in unit.files.items()
                 if policy.for_spec(spec in plan.required_specs) == HOLD_BACK}

    def screen(file: SourceFile, path: Path) -> tuple[str, str] | None:
        if path == Path(file.uri):
            changed = still_as_listed(file)
            return (FileStatus.FAILED, f"not sent: it {changed}") if changed else None
        look = look_at_copy(file, path)
        if look.unreadable:
            return FileStatus.FAILED, f"its staged copy {look.unreadable}"
        if look.unsafe:
            return FileStatus.REJECTED, look.unsafe
        if look.content and file.fingerprint in held_back:
            return FileStatus.REJECTED, f"it {look.content}; fix or replace it (or set content_policy: warn)"
        return None

    return screen


def found_on_server(client: Any, chunk: list[tuple[SourceFile, Path]], status: str) -> list[FileUpload]:
    """The files of ``chunk`` whose bytes Synapse already holds (looked up by SHA1, the checksum confirms carry);
    files that could not be looked up come back as failed, never as 'not there' (that could duplicate them)."""
    try:
        sha1 = {f.fingerprint: _sha1(p) for f, p in chunk}
        existing = set((client.verify_data_files_checksums(sorted(set(sha1.values()))) or {}).get("existing_checksums", []))
    except Exception as exc:
        reason = redact(f"{type(exc).__name__}: {exc}")
        return [_failed(f, f"could not check whether an earlier upload landed ({reason}); re-run the batch")
                for f, _ in chunk]
    return [FileUpload(f.relative_path, f.fingerprint, f.size, status, sha1[f.fingerprint])
            for f, _ in chunk if sha1[f.fingerprint] in existing]


def _sha1(path: Path) -> str:
    digest = hashlib.sha1(usedforsecurity=False)
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _upload_slice(
    client: BulkUploader, chunk: list[tuple[SourceFile, Path]], sending: Sending) -> list[FileUpload]:
    if not chunk:
        return []
    by_path = {str(path): f for f, path in chunk}
    try:
        response = upload_presigned(
            client, [Path(p) for p in by_path], max_workers=max(1, min(sending.max_workers, 100)),
            batch_size=max(1, min(len(chunk), 1000)), max_upload_retries=sending.max_upload_retries,
            timeouts=sending.timeouts)
    except UnsafeFileContentError:
        # A file changed since it was screened; the SDK refuses the whole call. Drop the unsafe ones, retry the rest.
        unsafe = {str(p): unsafe_reason(str(p)) for _, p in chunk}
        kept = [(f, p) for f, p in chunk if not unsafe[str(p)]]
        failed = [_failed(f, unsafe[str(p)] or "") for f, p in chunk if unsafe[str(p)]]
        if len(kept) == len(chunk):
            return [_failed(f, "the SDK content guard refused the upload") for f, _ in chunk]
        return failed + _upload_slice(client, kept, sending)
    except Exception as exc:  # the presigned-request or confirm call failed as a whole: what landed is unknown
        refused = _token_refusal(exc)
        if refused:  # nothing can be confirmed with this token, so nothing landed that a re-run could duplicate
            return [_failed(f, refused) for f, _ in chunk]
        reason = redact(f"{type(exc).__name__}: {exc}")
        landed = found_on_server(client, chunk, FileStatus.UPLOADED)
        settled = {u.fingerprint for u in landed if u.status == FileStatus.UPLOADED}
        return [u for u in landed if u.status == FileStatus.UPLOADED] + [
            _failed(f, f"{REQUEST_FAILED}: {reason}") for f, _ in chunk if f.fingerprint not in settled]
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


TOKEN_REFUSED = "Synapse refused the access token"


def _refused(upload: FileUpload) -> bool:
    """Sending again cannot help when the token was refused."""
    return TOKEN_REFUSED in (upload.error or "")


def _token_refusal(exc: Exception) -> str | None:
    status = getattr(exc, "status_code", None)
    if status in (401, 403):
        return (f"{TOKEN_REFUSED} ({status}) for uploads; set SYNAPSE_ACCESS_TOKEN to a valid token or run "
                "'synapse login', then run the batch again")
    return None


def _failed(f: SourceFile, error: str, status: str = FileStatus.FAILED) -> FileUpload:
    return FileUpload(f.relative_path, f.fingerprint, f.size, status, error=error)
