"""Uploading a batch's files through the SDK's presigned protocol, skipping what is already confirmed.

Files are sent in slices; after each slice the ledger records what the server confirmed, so a crash
or a re-run only sends what never landed. A failure of one slice (the API call itself) marks that
slice's files failed and the rest goes on. Each file is read once, as its PUT comes: the same bytes are
screened (:func:`~synapse_dagster.core.plan.screening.read_for_upload`), hashed and sent
(:mod:`synapse_dagster.core.synapse.presigned`).
"""

from __future__ import annotations

import hashlib
import random
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from synapse_dagster.core.sources.files import SourceFile
from synapse_dagster.core.deliver.ledger import ConfirmedFile, Ledger
from synapse_dagster.core.synapse.bulk_upload import UploadTimeouts
from synapse_dagster.core.synapse.presigned import Body, Landed, Outgoing, PresignedUploader, Refused, Streamed
from synapse_dagster.core.redaction import redact
from synapse_dagster.core.plan.batch_plan import BatchPlan
from synapse_dagster.core.plan.content import HOLD_BACK, ContentPolicy
from synapse_dagster.core.plan import screening
from synapse_dagster.core.plan.screening import FileLook, read_for_upload, still_as_listed
from synapse_dagster.core.sources.staging import Stage


SLICE_ATTEMPTS = 5  # at ~5% per request (the mixed fault test), three in a row failed one run in a few hundred
SLICE_RETRY_DELAY = 1.0  # seconds, doubled per attempt, full jitter
REQUEST_FAILED = "upload request failed"


class FileStatus:
    UPLOADED = "uploaded"
    ALREADY_UPLOADED = "already_uploaded"
    FAILED = "failed"
    REJECTED = "rejected"  # a data problem found as the file was read (unreadable, unsafe, bad content), not a
    # delivery failure: its unit is held back, and a re-run reads the file again


@dataclass(frozen=True)
class FileUpload:
    relative_path: str
    fingerprint: str
    size: int
    status: str
    checksum: str | None = None
    data_file_id: int | None = None
    error: str | None = None
    note: str | None = None  # sent with a warning (content_policy: warn)


@dataclass
class UploadReport:
    files: dict[str, FileUpload]  # by fingerprint
    seconds: float

    def by_status(self, status: str) -> list[FileUpload]:
        return [f for f in self.files.values() if f.status == status]

    def notes(self) -> dict[str, list[str]]:
        """Files sent with a warning, by the warning."""
        grouped: dict[str, list[str]] = {}
        for f in self.files.values():
            if f.note:
                grouped.setdefault(f.note, []).append(f.relative_path)
        return grouped

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
    on_slice_done: Callable[[list[FileUpload]], None] | None = None,
) -> UploadReport:
    """Upload every file not yet confirmed on ``target``; returns one :class:`FileUpload` per file.

    ``stage`` turns files into local paths a slice at a time (remote sources are copied there, bounded);
    ``screen`` judges what reading each file found (see :func:`content_screen`; by default only unreadable files
    are not sent);
    ``stage_failures`` is where ``stage`` records files it could not copy.
    """
    started = time.monotonic()
    unique = {f.fingerprint: f for f in files}
    confirmed = ledger.confirmed_files(target, unique)
    results: dict[str, FileUpload] = {}
    for fp, c in confirmed.items():
        f = unique[fp]
        results[fp] = FileUpload(f.relative_path, fp, f.size, FileStatus.ALREADY_UPLOADED, c.checksum, c.data_file_id)
    if on_slice_done and results:
        on_slice_done(list(results.values()))
    todo = [f for fp, f in unique.items() if fp not in confirmed]
    uncertain = ledger.attempted_files(target, [f.fingerprint for f in todo])
    failures = stage_failures if stage_failures is not None else {}
    uploader = PresignedUploader(client, max_workers=max_workers, max_put_retries=max_upload_retries, timeouts=timeouts)
    transfer = _Transfer(uploader, client, ledger, target, screen or send_all, uncertain)
    with uploader, stage(todo) as slices, ThreadPoolExecutor(SLICES_IN_FLIGHT, "synapse-slice") as rounds:
        for paths in slices:
            staged = [(unique[fp], path) for fp, path in paths.items()]
            for outcome in _overlapped(rounds, transfer.deliver, _slices(staged, slice_size)):
                results.update({u.fingerprint: u for u in outcome})
                if on_slice_done:
                    on_slice_done(outcome)
    for fp, reason in failures.items():
        if fp in unique and fp not in results:
            results[fp] = _failed(unique[fp], f"could not be copied from its source: {reason}")
    for fp, f in unique.items():  # a file the stage silently skipped is a failure, never a gap
        results.setdefault(fp, _failed(f, "was not staged for upload; re-run the batch"))
    return UploadReport(files=results, seconds=time.monotonic() - started)


SLICES_IN_FLIGHT = 3  # while one slice waits for its presign or confirm answer, the others' PUTs keep going
SLICE_BYTES = 64 * 2**20  # a slice's files are held in memory between their read and their PUT


def _slices(staged: list[tuple[SourceFile, Path]], size: int) -> Iterator[list[tuple[SourceFile, Path]]]:
    """At most ``size`` files and about ``SLICE_BYTES`` of those read into memory (bigger files are streamed and
    do not count), so an upload holds at most ``SLICES_IN_FLIGHT`` x ``SLICE_BYTES`` of file bytes."""
    chunk: list[tuple[SourceFile, Path]] = []
    held = 0
    for item in staged:
        weight = item[0].size if item[0].size <= screening.IN_MEMORY_MAX else 0
        if chunk and (len(chunk) >= size or held + weight > SLICE_BYTES):
            yield chunk
            chunk, held = [], 0
        chunk.append(item)
        held += weight
    if chunk:
        yield chunk


def _overlapped(pool: ThreadPoolExecutor, work: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[Any]:
    """``map(work, items)`` with at most ``SLICES_IN_FLIGHT`` items in progress, results in order."""
    pending: deque[Future] = deque()
    for item in items:
        pending.append(pool.submit(work, item))
        if len(pending) >= SLICES_IN_FLIGHT:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


class _Transfer:
    """One chunk at a time: ask Synapse about files a lost answer left uncertain, read and upload the rest, record.

    A file is marked *attempted* in the ledger before its upload request and *confirmed* after the answer, so a
    lost confirm answer, a 5xx or a kill in between leaves a trace: before such a file is sent again, its SHA1 is
    looked up on the server (``verify_data_files_checksums``), and a file that did land is not uploaded twice.
    """

    def __init__(self, uploader: PresignedUploader, client: BulkUploader, ledger: Ledger, target: str,
                 screen: Screen, uncertain: set[str]) -> None:
        self.uploader, self.client, self.ledger, self.target = uploader, client, ledger, target
        self.screen, self.uncertain = screen, uncertain

    def deliver(self, chunk: list[tuple[SourceFile, Path]]) -> list[FileUpload]:
        outcome: list[FileUpload] = []
        doubtful = [(f, p) for f, p in chunk if f.fingerprint in self.uncertain]
        if doubtful:
            known = found_on_server(self.client, doubtful, FileStatus.ALREADY_UPLOADED)
            outcome += known
            settled = {u.fingerprint for u in known}
            chunk = [(f, p) for f, p in chunk if f.fingerprint not in settled]
        outcome += self._send(chunk)
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
            sent = self._round(chunk)
            again = {u.fingerprint for u in sent if u.status == FileStatus.FAILED and _worth_again(u)}
            if not again or attempt == SLICE_ATTEMPTS:
                return outcome + sent
            outcome += [u for u in sent if u.fingerprint not in again]
            chunk = [(f, p) for f, p in chunk if f.fingerprint in again]
            time.sleep(random.uniform(0, SLICE_RETRY_DELAY * 2 ** (attempt - 1)))
        return outcome

    def _round(self, chunk: list[tuple[SourceFile, Path]]) -> list[FileUpload]:
        if not chunk:
            return []
        by_key = {f.fingerprint: (f, p) for f, p in chunk}
        notes: dict[str, str] = {}
        streamed: set[str] = set()
        outgoing = [Outgoing(f.fingerprint, f.name, f.size, self._loader(f, p, notes, streamed)) for f, p in chunk]
        try:
            landed = self.uploader.upload(outgoing)
        except Exception as exc:  # the presigned-request or confirm call failed as a whole: what landed is unknown
            return _request_failed(self.client, chunk, exc)
        outcome = [_outcome(*by_key.pop(u.key), u, notes.get(u.key), u.key in streamed) for u in landed
                   if u.key in by_key]
        return outcome + [_failed(f, "no result returned for this file (not uploaded); re-run the batch")
                          for f, _ in by_key.values()]

    def _loader(self, file: SourceFile, path: Path, notes: dict[str, str],
                streamed: set[str]) -> Callable[[], Body | Refused]:
        def load() -> Body | Refused:
            read = read_for_upload(file, path)
            verdict = self.screen(file, read.look)
            if verdict is not None and verdict[0] == NOTE:
                notes[file.fingerprint] = verdict[1]
            elif verdict is not None:
                return Refused(*verdict)
            if read.data is not None:
                return read.data
            streamed.add(file.fingerprint)
            return Streamed(path, file.size)

        return load


NOTE = "note"  # a screen's verdict that sends the file and says why it is worth a look
Screen = Callable[[SourceFile, FileLook], tuple[str, str] | None]  # (status, reason) or (NOTE, note); None: send


def send_all(file: SourceFile, look: FileLook) -> tuple[str, str] | None:
    """Only a file that cannot be read as listed is not sent."""
    return (FileStatus.REJECTED, f"not sent: it {look.unreadable}") if look.unreadable else None


def content_screen(plan: BatchPlan, policy: ContentPolicy) -> Screen:
    """Judge what reading each file found: a file that cannot be read as listed is rejected, what the content
    guard refuses is rejected too, and a content finding rejects or notes the file by the spec's
    ``content_policy``: each holds back its own unit (a re-run reads the file again)."""
    specs = {f.fingerprint: (spec, spec in plan.required_specs) for unit in plan.valid_units
             for spec, f in unit.files.items()}

    def screen(file: SourceFile, look: FileLook) -> tuple[str, str] | None:
        spec, required = specs.get(file.fingerprint, ("?", True))
        what = f"file {file.relative_path} ({spec})"
        if look.unreadable:
            return FileStatus.REJECTED, f"not sent: {what} {look.unreadable}"
        if look.unsafe:
            return FileStatus.REJECTED, f"{what} {look.unsafe}"
        if not look.content:
            return None
        which = "required" if required else "optional"
        if policy.for_spec(required) == HOLD_BACK:
            return FileStatus.REJECTED, (f"{what} {look.content}; fix or replace it (or set content_policy.{which}: "
                                         "warn)")
        return NOTE, f"{what} {look.content}; uploaded anyway (content_policy.{which}: warn)"

    return screen


CHANGED_WHILE_SENT = "the file changed while it was uploaded, so the upload does not count"


def _outcome(f: SourceFile, path: Path, landed: Landed, note: str | None, streamed: bool) -> FileUpload:
    """A file sent from memory was sent as it was read and screened; one streamed from where it lies may have
    changed while it was sent, and then the server holds bytes that match neither the listing nor what was
    screened, so the upload does not count (a re-run lists and sends it anew)."""
    if landed.refused is not None:
        return _failed(f, landed.refused.reason, landed.refused.status)
    changed = still_as_listed(f) if streamed and landed.checksum and path == Path(f.uri) else None
    if changed:
        return _failed(f, f"{CHANGED_WHILE_SENT}: it {changed}")
    if landed.checksum:
        return FileUpload(f.relative_path, f.fingerprint, f.size, FileStatus.UPLOADED, landed.checksum,
                          landed.data_file_id, note=note)
    return _failed(f, redact(landed.error or "the server did not confirm the upload"))


def _request_failed(client: Any, chunk: list[tuple[SourceFile, Path]], exc: Exception) -> list[FileUpload]:
    refused = _token_refusal(exc)
    if refused:  # nothing can be confirmed with this token, so nothing landed that a re-run could duplicate
        return [_failed(f, refused) for f, _ in chunk]
    reason = redact(f"{type(exc).__name__}: {exc}")
    landed = [u for u in found_on_server(client, chunk, FileStatus.UPLOADED) if u.status == FileStatus.UPLOADED]
    settled = {u.fingerprint for u in landed}
    return landed + [_failed(f, f"{REQUEST_FAILED}: {reason}") for f, _ in chunk if f.fingerprint not in settled]


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


TOKEN_REFUSED = "Synapse refused the access token"


def _worth_again(upload: FileUpload) -> bool:
    """Sending again cannot help when the token was refused (a file that could not be read is REJECTED, not
    FAILED, so it never comes here)."""
    return TOKEN_REFUSED not in (upload.error or "")


def _token_refusal(exc: Exception) -> str | None:
    status = getattr(exc, "status_code", None)
    if status in (401, 403):
        return (f"{TOKEN_REFUSED} ({status}) for uploads; set SYNAPSE_ACCESS_TOKEN to a valid token or run "
                "'synapse login', then run the batch again")
    return None


def _failed(f: SourceFile, error: str, status: str = FileStatus.FAILED) -> FileUpload:
    return FileUpload(f.relative_path, f.fingerprint, f.size, status, error=error)
