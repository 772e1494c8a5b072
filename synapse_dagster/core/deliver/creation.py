"""Creating data units in batches, exactly once per ``dataset_key``.

``POST data_units/`` has no idempotency key, and the SDK retries POSTs on 502/503/504, so the only
safe way to avoid duplicates is to know what exists. The ledger answers cheaply; the server is asked
(one listing of the collection) only when the ledger cannot be sure: a unit left *pending* by a
crash or a lost response, or a ledger that has never seen a collection which already holds units.
A request the server rejects is split so that one bad unit never sinks the others.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from synapse_dagster.core.deliver.ledger import Ledger
from synapse_dagster.core.meta.merge import DATASET_KEY_FIELD
from synapse_dagster.core.redaction import redact


class UnitStatus:
    CREATED = "created"
    EXISTING = "existing"
    FAILED = "failed"


@dataclass(frozen=True)
class UnitRequest:
    dataset_key: str
    files: dict[str, dict[str, str]]  # spec -> {"checksum", "path"}
    meta: dict[str, Any]

    def payload(self, collection: int) -> dict[str, Any]:
        return {"data_collection": collection, "files": self.files, "meta": self.meta}


@dataclass(frozen=True)
class UnitOutcome:
    dataset_key: str
    status: str
    unit_id: int | None = None
    error: str | None = None


@dataclass
class CreationReport:
    outcomes: dict[str, UnitOutcome] = field(default_factory=dict)
    reconciled: bool = False
    requests_sent: int = 0
    skipped: list[tuple[str, list[str]]] = field(default_factory=list)  # (dataset_key, why) never requested

    def by_status(self, status: str) -> list[UnitOutcome]:
        return [o for o in self.outcomes.values() if o.status == status]


class UnitClient(Protocol):
    def create_data_units(self, data: list[dict[str, Any]]) -> Any: ...
    def list_data_units(self, params: dict[str, Any] | None = None, **kwargs: Any) -> Any: ...


def server_units_by_key(client: UnitClient, collection: int) -> Iterator[tuple[str, int]]:
    """Stream ``(dataset_key, unit id)`` of every unit in the collection that carries a dataset_key."""
    pages, _count = client.list_data_units(
        params={"data_collection": collection}, list_all=True, url_conversion={}, page_size=500
    )
    for unit in pages:
        key = (unit.get("meta") or {}).get(DATASET_KEY_FIELD)
        if key is not None:
            yield str(key), unit.get("id")


def server_unit_count(client: UnitClient, collection: int) -> int:
    page = client.list_data_units(params={"data_collection": collection, "page_size": 1})
    return int(page.get("count", 0)) if isinstance(page, Mapping) else 0


def create_units(
    client: UnitClient,
    collection: int,
    requests: Iterable[UnitRequest],
    *,
    ledger: Ledger,
    target: str,
    batch: str,
    batch_size: int = 100,
) -> CreationReport:
    report = CreationReport()
    wanted = {r.dataset_key: r for r in requests}
    known = ledger.unit_states(target, collection, wanted)
    for key, (status, unit_id) in known.items():
        if status == "created":
            report.outcomes[key] = UnitOutcome(key, UnitStatus.EXISTING, unit_id)
    todo = [r for k, r in wanted.items() if k not in report.outcomes]
    if not todo:
        return report

    uncertain = ledger.pending_keys(target, collection)
    if uncertain or (not ledger.knows_collection(target, collection) and server_unit_count(client, collection) > 0):
        todo = _reconcile(client, collection, todo, ledger=ledger, target=target, batch=batch, report=report)

    for start in range(0, len(todo), batch_size):
        _create_chunk(client, collection, todo[start : start + batch_size], ledger=ledger, target=target, batch=batch, report=report)
    return report


def _reconcile(
    client: UnitClient, collection: int, todo: list[UnitRequest], *, ledger: Ledger, target: str, batch: str, report: CreationReport
) -> list[UnitRequest]:
    """Ask the server which of ``todo`` (and of the ledger's pending units) exist; return the rest."""
    report.reconciled = True
    pending = set(ledger.pending_keys(target, collection))
    interesting = {r.dataset_key for r in todo} | pending
    found: dict[str, int] = {}
    for key, unit_id in server_units_by_key(client, collection):
        if key in interesting and key not in found:
            found[key] = unit_id
    ledger.mark_created(target, collection, found.items(), batch)
    ledger.clear_pending(target, collection, pending - set(found))
    remaining = []
    for r in todo:
        if r.dataset_key in found:
            report.outcomes[r.dataset_key] = UnitOutcome(r.dataset_key, UnitStatus.EXISTING, found[r.dataset_key])
        else:
            remaining.append(r)
    return remaining


def _create_chunk(
    client: UnitClient, collection: int, chunk: list[UnitRequest], *, ledger: Ledger, target: str, batch: str, report: CreationReport
) -> None:
    keys = [r.dataset_key for r in chunk]
    ledger.mark_pending(target, collection, keys, batch)
    report.requests_sent += 1
    try:
        response = client.create_data_units([r.payload(collection) for r in chunk])
    except Exception as exc:
        status = getattr(exc, "status_code", None)
        if status in (400, 422):
            ledger.clear_pending(target, collection, keys)  # rejected: nothing was written
            _split_rejected(client, collection, chunk, exc, ledger=ledger, target=target, batch=batch, report=report)
            return
        # Outcome unknown (lost response, timeout, 5xx after retries): ask the server what landed.
        still_missing = _reconcile(client, collection, chunk, ledger=ledger, target=target, batch=batch, report=report)
        reason = redact(f"{type(exc).__name__}: {exc}")
        for r in still_missing:
            report.outcomes[r.dataset_key] = UnitOutcome(r.dataset_key, UnitStatus.FAILED, error=f"not created: {reason}")
        return
    created = _match_response(chunk, response)
    ledger.mark_created(target, collection, created.items(), batch)
    for key in keys:
        report.outcomes[key] = UnitOutcome(key, UnitStatus.CREATED, created.get(key))


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


def _split_rejected(
    client: UnitClient, collection: int, chunk: list[UnitRequest], exc: Exception, *, ledger: Ledger, target: str, batch: str, report: CreationReport
) -> None:
    detail = getattr(exc, "detail", None)
    if len(chunk) == 1:
        report.outcomes[chunk[0].dataset_key] = UnitOutcome(
            chunk[0].dataset_key, UnitStatus.FAILED, error=redact(f"rejected by Synapse: {_detail_text(detail)}")
        )
        return
    # A DRF list error aligns with the request: failing items carry messages, good ones are empty.
    if isinstance(detail, list) and len(detail) == len(chunk) and any(detail):
        good = []
        for r, item_error in zip(chunk, detail):
            if item_error:
                report.outcomes[r.dataset_key] = UnitOutcome(
                    r.dataset_key, UnitStatus.FAILED, error=redact(f"rejected by Synapse: {_detail_text(item_error)}")
                )
            else:
                good.append(r)
        if good:
            _create_chunk(client, collection, good, ledger=ledger, target=target, batch=batch, report=report)
        return
    middle = len(chunk) // 2
    for half in (chunk[:middle], chunk[middle:]):
        _create_chunk(client, collection, half, ledger=ledger, target=target, batch=batch, report=report)


def _detail_text(detail: Any) -> str:
    if isinstance(detail, Mapping):
        return "; ".join(f"{k}: {_detail_text(v)}" for k, v in detail.items())
    if isinstance(detail, list):
        return "; ".join(_detail_text(d) for d in detail if d)
    return str(detail)
