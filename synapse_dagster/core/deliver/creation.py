"""Creating data units in batches, exactly once per ``dataset_key``.

``POST data_units/`` has no idempotency key, and the SDK retries POSTs on 502/503/504, so the only
safe way to avoid duplicates is to know what exists. The ledger answers, from a key index of the collection
that is brought up to date before each creation run and after every unknown outcome: by reading the tail of
the server's listing (what is new since the last look), or the whole listing the first time and whenever the
server's order cannot be trusted (``listing_index.py``).
A request the server rejects is split so that one bad unit never sinks the others.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from synapse_dagster.core.deliver.ledger import Ledger
from synapse_dagster.core.deliver.listing_index import Listing, read_new_records
from synapse_dagster.core.deliver.unit_contents import (
    MAX_VERSIONS, PREVIOUS_VERSION_FIELD, content_digest, indexed_unit, versioned_key)
from synapse_dagster.core.meta.merge import DATASET_KEY_FIELD
from synapse_dagster.core.redaction import redact


class UnitStatus:
    CREATED = "created"
    EXISTING = "existing"
    FAILED = "failed"
    COLLIDED = "collision"  # the key exists on the server with other files or meta; see CollisionPolicy


class CollisionPolicy:
    SKIP = "skip"  # report it with the existing unit, create nothing
    FAIL = "fail"  # create nothing of the batch, and fail the run
    NEW_VERSION = "new_version"  # create it under a suffixed key that points at the existing unit


@dataclass(frozen=True)
class UnitRequest:
    dataset_key: str
    files: dict[str, dict[str, str]]  # spec -> {"checksum", "path"}
    meta: dict[str, Any]

    def payload(self, collection: int) -> dict[str, Any]:
        return {"data_collection": collection, "files": self.files, "meta": self.meta}

    @property
    def digest(self) -> str:
        return content_digest({spec: f["checksum"] for spec, f in self.files.items()}, self.meta)

    def as_version(self, version: int, previous_unit: int | None) -> UnitRequest:
        key = versioned_key(self.dataset_key, version)
        return UnitRequest(key, self.files, {**self.meta, DATASET_KEY_FIELD: key, PREVIOUS_VERSION_FIELD: previous_unit})


@dataclass(frozen=True)
class UnitOutcome:
    dataset_key: str
    status: str
    unit_id: int | None = None
    error: str | None = None
    status_code: int | None = None  # the HTTP status of the last failed attempt
    attempts: int = 0


@dataclass
class CreationReport:
    outcomes: dict[str, UnitOutcome] = field(default_factory=dict)
    reconciled: bool = False
    requests_sent: int = 0
    units_listed: int = 0  # units read from the server's listing to reconcile
    skipped: list[tuple[str, list[str]]] = field(default_factory=list)  # (dataset_key, why) never requested
    held_back: list[tuple[str, list[str]]] = field(default_factory=list)  # refused by the content guard once staged
    tasks: Any = None  # a TaskReport when the pipeline names a project
    versions: dict[str, str] = field(default_factory=dict)  # dataset_key -> the versioned key it went to
    collision_policy: str = CollisionPolicy.SKIP

    def unit_ids(self) -> list[int]:
        return [o.unit_id for o in self.outcomes.values()
                if o.status in (UnitStatus.CREATED, UnitStatus.EXISTING) and o.unit_id is not None]

    def by_status(self, status: str) -> list[UnitOutcome]:
        return [o for o in self.outcomes.values() if o.status == status]


class UnitClient(Protocol):
    def create_data_units(self, data: list[dict[str, Any]]) -> Any: ...
    def list_data_units(self, params: dict[str, Any] | None = None, **kwargs: Any) -> Any: ...


def server_unit_count(client: UnitClient, collection: int) -> int:
    page = client.list_data_units(params={"data_collection": collection, "page_size": 1})
    return int(page.get("count", 0)) if isinstance(page, Mapping) else 0


@dataclass(frozen=True)
class RetryPolicy:
    """How often a chunk is sent again after an outcome that wrote nothing (429) or is unknown (5xx, a lost
    answer, a timeout): each resend waits ``base_delay * 2**n`` seconds with full jitter, at most ``max_delay``."""

    max_attempts: int = 5
    base_delay: float = 1.0
    max_delay: float = 30.0

    def delay(self, attempt: int) -> float:
        return random.uniform(0, min(self.max_delay, self.base_delay * 2 ** (attempt - 1)))


def units_listing(collection: int) -> str:
    return f"data_units?data_collection={collection}"


def create_units(
    client: UnitClient,
    collection: int,
    requests: Iterable[UnitRequest],
    *,
    ledger: Ledger,
    target: str,
    batch: str,
    batch_size: int = 100,
    retry: RetryPolicy = RetryPolicy(),
    sleep: Callable[[float], None] = time.sleep,
    on_collision: str = CollisionPolicy.SKIP,
) -> CreationReport:
    """Create every unit of ``requests`` that does not exist yet (all known up front; see :class:`UnitCreation`)."""
    wanted = list(requests)
    with UnitCreation(client, collection, [r.dataset_key for r in wanted], ledger=ledger, target=target, batch=batch,
                      batch_size=batch_size, retry=retry, sleep=sleep, on_collision=on_collision) as creation:
        creation.offer(wanted)
        return creation.finish()


class UnitCreation:
    """A batch's unit creation, fed while its files upload: units whose files are all confirmed are offered, and
    sent in chunks of ``batch_size`` as soon as a chunk is full, so creation overlaps the upload.

    ``keys`` are every ``dataset_key`` the batch may offer. Before anything is sent, the ledger and (when it cannot
    be sure) the server's listing say which of them exist; that runs on the sender thread, while the upload starts.
    All work runs on that one thread, in order. With ``on_dataset_key_collision: fail`` and some of the keys already
    on the server, nothing is sent until every unit is offered: a collision anywhere must stop the whole batch.
    An error on the sender stops all sending (nothing more is written), and :meth:`finish` raises it.
    """

    def __init__(self, client: UnitClient, collection: int, keys: Iterable[str], *, ledger: Ledger, target: str,
                 batch: str, batch_size: int = 100, retry: RetryPolicy = RetryPolicy(),
                 sleep: Callable[[float], None] = time.sleep, on_collision: str = CollisionPolicy.SKIP) -> None:
        self.creator = _Creator(client, collection, ledger, target, batch, retry, sleep)
        self.report = self.creator.report
        self.report.collision_policy = on_collision
        self.batch_size, self.policy = batch_size, on_collision
        self.wanted: dict[str, UnitRequest] = {}
        self.collisions = _Collisions(self.creator, self.wanted, on_collision)
        self.known: dict[str, int | None] = {}  # keys that exist already, and their unit
        self.held: list[UnitRequest] = []  # offered, waiting for the last offer (see above)
        self.queue: list[UnitRequest] = []  # settled, to send
        self.holding = False
        self.error: BaseException | None = None
        self.sender = ThreadPoolExecutor(1, "synapse-create")
        self._submit(self._begin, list(keys))

    def __enter__(self) -> UnitCreation:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sender.shutdown(wait=True, cancel_futures=True)

    def offer(self, requests: list[UnitRequest]) -> None:
        if requests:
            self._submit(self._take, list(requests))

    def finish(self) -> CreationReport:
        self._submit(self._flush)
        self.sender.shutdown(wait=True)
        if self.error is not None:
            raise self.error
        return self.report

    def _submit(self, work: Callable[..., None], *args: Any) -> None:
        def guarded() -> None:
            if self.error is not None:
                return
            try:
                work(*args)
            except BaseException as exc:  # noqa: BLE001 - re-raised by finish(); nothing is sent after it
                self.error = exc

        self.sender.submit(guarded)

    def _begin(self, keys: list[str]) -> None:
        ledger, target, collection = self.creator.ledger, self.creator.target, self.creator.collection
        for key, (status, unit_id) in ledger.unit_states(target, collection, keys).items():
            if status == "created":
                self.known[key] = unit_id
        todo = {k for k in keys if k not in self.known}
        # Read what the server gained since the last look: the tail of its listing, cheap once the key index has a
        # mark (every time then), or the whole collection when something is uncertain.
        if todo and (ledger.pending_keys(target, collection) or ledger.listing_mark(target, units_listing(collection))
                     is not None or (not ledger.knows_collection(target, collection)
                                     and server_unit_count(self.creator.client, collection) > 0)):
            self.known.update(self.creator.found_on_server(todo))
        self.holding = self.policy == CollisionPolicy.FAIL and bool(self.known)

    def _take(self, offered: list[UnitRequest]) -> None:
        requests = [r for r in offered if r.dataset_key not in self.wanted]  # an offer is taken once
        for r in requests:
            self.wanted[r.dataset_key] = r
            if r.dataset_key in self.known:
                self.report.outcomes[r.dataset_key] = UnitOutcome(r.dataset_key, UnitStatus.EXISTING,
                                                                  self.known[r.dataset_key])
        if self.holding:
            self.held += requests
            return
        self.queue += self._settle(requests)
        self._send(everything=False)

    def _flush(self) -> None:
        if self.held:
            self.queue += self._settle(self.held)
            self.held = []
        self._send(everything=True)

    def _settle(self, requests: list[UnitRequest]) -> list[UnitRequest]:
        outcomes = self.report.outcomes
        existing = [r.dataset_key for r in requests if r.dataset_key in outcomes]
        return self.collisions.settle([r for r in requests if r.dataset_key not in outcomes], existing)

    def _send(self, *, everything: bool) -> None:
        """Send the queue's full chunks (and with ``everything``, the last short one too)."""
        size = self.batch_size
        end = len(self.queue) if everything else len(self.queue) - len(self.queue) % size
        for start in range(0, end, size):
            self.creator.send(self.queue[start : start + size])
        del self.queue[:end]


class _Creator:
    """One collection's creation run: sends chunks, and reconciles with the server whenever an answer is unknown."""

    def __init__(self, client: UnitClient, collection: int, ledger: Ledger, target: str, batch: str,
                 retry: RetryPolicy, sleep: Callable[[float], None]) -> None:
        self.client, self.collection, self.ledger, self.target, self.batch = client, collection, ledger, target, batch
        self.retry, self.sleep = retry, sleep
        self.report = CreationReport()
        self.stopped: str | None = None  # why nothing more is sent (the token was refused)
        self.stopped_status: int | None = None

    def reconcile(self, todo: list[UnitRequest]) -> list[UnitRequest]:
        """After an unknown outcome: the units of ``todo`` the server holds were created by this run's own
        unanswered request; return the rest."""
        found = self.found_on_server({r.dataset_key for r in todo})
        remaining = []
        for r in todo:
            if r.dataset_key in found:
                self.report.outcomes[r.dataset_key] = UnitOutcome(r.dataset_key, UnitStatus.CREATED, found[r.dataset_key])
            else:
                remaining.append(r)
        return remaining

    def found_on_server(self, keys: set[str]) -> dict[str, int | None]:
        """Which of ``keys`` (and of the ledger's pending units) exist, with their unit.

        What is new on the server since the last look is read into the ledger's key index (the tail of the
        listing, or all of it the first time), and the index answers.
        """
        self.report.reconciled = True
        pending = set(self.ledger.pending_keys(self.target, self.collection))
        listing = self.read_new_units()
        states = self.ledger.unit_states(self.target, self.collection, keys | pending)
        found = {key: unit_id for key, (state, unit_id) in states.items() if state == "created"}
        self.ledger.clear_pending(self.target, self.collection, pending - set(found))
        self.report.units_listed += listing.units
        return {key: unit_id for key, unit_id in found.items() if key in keys}

    def read_new_units(self) -> Listing:
        return read_new_records(
            self.ledger, self.target, units_listing(self.collection),
            lambda number, size: self.client.list_data_units(
                params={"data_collection": self.collection, "page": number, "page_size": size}),
            lambda units: self.ledger.index_units(self.target, self.collection, units), indexed_unit)

    def read_all_units(self) -> Listing:
        """The whole listing, for digests the key index lacks (units indexed before digests were kept)."""
        self.ledger.set_listing_mark(self.target, units_listing(self.collection), None)
        return self.read_new_units()

    def send(self, chunk: list[UnitRequest], attempt: int = 1) -> None:
        if self.stopped:
            self._fail(chunk, f"not sent: {self.stopped}", self.stopped_status)
            return
        keys = [r.dataset_key for r in chunk]
        self.ledger.mark_pending(self.target, self.collection, keys, self.batch)
        self.report.requests_sent += 1
        try:
            response = self.client.create_data_units([r.payload(self.collection) for r in chunk])
        except Exception as exc:
            self._handle_failure(chunk, exc, attempt)
            return
        created = _match_response(chunk, response)
        self.ledger.mark_created(self.target, self.collection, created.items(), self.batch)
        self.ledger.record_contents(self.target, self.collection, [(r.dataset_key, r.digest) for r in chunk])
        for key in keys:
            self.report.outcomes[key] = UnitOutcome(key, UnitStatus.CREATED, created.get(key))

    def _handle_failure(self, chunk: list[UnitRequest], exc: Exception, attempt: int) -> None:
        status = getattr(exc, "status_code", None)
        reason = redact(f"{type(exc).__name__}: {exc}")
        keys = [r.dataset_key for r in chunk]
        if status in (400, 422):
            self.ledger.clear_pending(self.target, self.collection, keys)  # rejected: nothing was written
            self._split_rejected(chunk, exc)
            return
        if status in (401, 403):
            self.ledger.clear_pending(self.target, self.collection, keys)
            self.stopped = f"Synapse refused the access token ({status}); set SYNAPSE_ACCESS_TOKEN or run 'synapse login'"
            self.stopped_status = status
            self._fail(chunk, self.stopped, status, attempt)
            return
        if status == 429:  # refused, so nothing was written
            self.ledger.clear_pending(self.target, self.collection, keys)
            missing = chunk
        else:  # the outcome is unknown (lost answer, timeout, 5xx): ask the server what landed
            missing = self.reconcile(chunk)
        if missing and attempt < self.retry.max_attempts:
            self.sleep(self.retry.delay(attempt))
            self.send(missing, attempt + 1)
        elif missing:
            self._fail(missing, f"not created after {attempt} attempts: {reason}", status, attempt)

    def _fail(self, chunk: list[UnitRequest], error: str, status_code: int | None = None, attempts: int = 0) -> None:
        for r in chunk:
            self.report.outcomes[r.dataset_key] = UnitOutcome(r.dataset_key, UnitStatus.FAILED, error=error,
                                                              status_code=status_code, attempts=attempts)

    def _split_rejected(self, chunk: list[UnitRequest], exc: Exception) -> None:
        detail = getattr(exc, "detail", None)
        if len(chunk) == 1:
            self.report.outcomes[chunk[0].dataset_key] = UnitOutcome(
                chunk[0].dataset_key, UnitStatus.FAILED, error=redact(f"rejected by Synapse: {_detail_text(detail)}"),
                status_code=getattr(exc, "status_code", None), attempts=1,
            )
            return
        # A DRF list error aligns with the request: failing items carry messages, good ones are empty.
        if isinstance(detail, list) and len(detail) == len(chunk) and any(detail):
            good = []
            for r, item_error in zip(chunk, detail):
                if item_error:
                    self.report.outcomes[r.dataset_key] = UnitOutcome(
                        r.dataset_key, UnitStatus.FAILED, error=redact(f"rejected by Synapse: {_detail_text(item_error)}"),
                        status_code=getattr(exc, "status_code", None), attempts=1,
                    )
                else:
                    good.append(r)
            if good:
                self.send(good)
            return
        middle = len(chunk) // 2
        for half in (chunk[:middle], chunk[middle:]):
            self.send(half)


class _Collisions:
    """Units whose key the server already holds with other content (another batch's unit, or this batch's files
    changed since it ran): never silently taken for the same unit, they follow the pipeline's policy."""

    def __init__(self, creator: _Creator, wanted: Mapping[str, UnitRequest], policy: str) -> None:
        self.creator, self.wanted, self.policy = creator, wanted, policy
        self.report, self.ledger = creator.report, creator.ledger
        self.listed_all = False

    def settle(self, todo: list[UnitRequest], existing: list[str]) -> list[UnitRequest]:
        """``todo`` less what the policy stops, plus the new versions it makes of the ``existing`` keys' units."""
        found = self.contents(existing)
        collided = {k: v for k, v in found.items() if v[0] is not None and v[0] != self.wanted[k].digest}
        if not collided:
            return todo
        if self.policy == CollisionPolicy.NEW_VERSION:
            self.report.units_listed += self.creator.read_new_units().units  # versions made elsewhere since
            return todo + [v for k, (_, unit_id, _) in collided.items() if (v := self.next_version(k, unit_id))]
        for key, (_, unit_id, batch) in collided.items():
            self.report.outcomes[key] = UnitOutcome(key, UnitStatus.COLLIDED, unit_id, self.message(key, unit_id, batch))
        if self.policy == CollisionPolicy.FAIL:
            self.creator._fail(todo, f"not sent: {len(collided)} unit(s) of the batch collide with existing units "
                               "(on_dataset_key_collision: fail)")
            return []
        return todo

    def contents(self, keys: list[str]) -> dict[str, tuple[str | None, int | None, str | None]]:
        found = self.ledger.unit_contents(self.creator.target, self.creator.collection, keys)
        if not self.listed_all and any(digest is None for digest, _, _ in found.values()):
            self.listed_all = True
            self.report.units_listed += self.creator.read_all_units().units
            found = self.ledger.unit_contents(self.creator.target, self.creator.collection, keys)
        return found

    def next_version(self, key: str, unit_id: int | None) -> UnitRequest | None:
        """The first version of ``key`` not on the server, or ``None`` when one holds exactly this unit."""
        self.report.outcomes.pop(key, None)
        request = self.wanted[key]
        for version in range(2, MAX_VERSIONS + 1):
            candidate = request.as_version(version, unit_id)
            known = self.contents([candidate.dataset_key]).get(candidate.dataset_key)
            self.report.versions[key] = candidate.dataset_key
            if known is None:
                return candidate
            digest, unit_id, _ = known
            if digest is None or digest == candidate.digest:
                self.report.outcomes[candidate.dataset_key] = UnitOutcome(candidate.dataset_key, UnitStatus.EXISTING,
                                                                          unit_id)
                return None
        self.creator._fail([request], f"dataset_key '{key}' has {MAX_VERSIONS} versions already; not created")
        return None

    def message(self, key: str, unit_id: int | None, batch: str | None) -> str:
        origin = f"from batch '{batch}'" if batch else "created outside this pipeline"
        verdict = "the run fails" if self.policy == CollisionPolicy.FAIL else "skipped"
        return (f"dataset_key '{key}' already exists as unit {unit_id} ({origin}) with other files or meta; {verdict} "
                "(on_dataset_key_collision: " + self.policy + "). Give the unit its own dataset_key, set "
                "on_dataset_key_collision: new_version, or delete the old unit")


def _match_response(chunk: list[UnitRequest], response: Any) -> dict[str, int | None]:
    items = response if isinstance(response, list) else (response or {}).get("results") if isinstance(response, dict) else None
    if isinstance(response, dict) and items is None:
        items = [response]
    created: dict[str, int | None] = {r.dataset_key: None for r in chunk}
    for index, item in enumerate(items or []):
        if not isinstance(item, Mapping):
            continue
        key = (item.get("meta") or {}).get(DATASET_KEY_FIELD)
        if key is None and index < len(chunk):
            key = chunk[index].dataset_key
        if key in created:
            created[str(key)] = item.get("id")
    return created


def _detail_text(detail: Any) -> str:
    if isinstance(detail, Mapping):
        return "; ".join(f"{k}: {_detail_text(v)}" for k, v in detail.items())
    if isinstance(detail, list):
        return "; ".join(_detail_text(d) for d in detail if d)
    return str(detail)


def dead_letters(report: CreationReport) -> list[DeadLetter]:
    """The units of a batch that failed for good, by stage: for the ledger, the UI table and the CLI."""
    letters = [DeadLetter(o.dataset_key, "create", o.error or "", o.status_code, o.attempts)
               for o in report.by_status(UnitStatus.FAILED)]
    letters += [DeadLetter(key, "upload", "; ".join(reasons), None, 0) for key, reasons in report.skipped]
    return letters


@dataclass(frozen=True)
class DeadLetter:
    dataset_key: str
    stage: str  # "upload" (a file did not land) or "create"
    reason: str
    status_code: int | None
    attempts: int
