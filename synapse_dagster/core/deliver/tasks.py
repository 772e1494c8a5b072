"""One labeling task per created unit in the pipeline's project, never two.

``POST tasks/`` has no idempotency key either, so it is guarded like unit creation: a task is *pending* in the
ledger before its request and *created* after the answer. Before anything is sent, and after an unknown outcome
(lost answer, 5xx, timeout), the project's task listing is read into the ledger's key index (its tail once the
index has a mark, all of it the first time: ``listing_index.py``) and matched by data unit.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from synapse_dagster.core.deliver.creation import RetryPolicy
from synapse_dagster.core.deliver.ledger import Ledger
from synapse_dagster.core.deliver.listing_index import read_new_records, task_key
from synapse_dagster.core.redaction import redact


class TaskClient(Protocol):
    def create_tasks(self, data: dict[str, Any]) -> Any: ...
    def list_tasks(self, params: dict[str, Any] | None = None, **kwargs: Any) -> Any: ...


@dataclass
class TaskReport:
    created: dict[int, int | None] = field(default_factory=dict)  # data unit -> task id
    existing: set[int] = field(default_factory=set)
    failed: dict[int, str] = field(default_factory=dict)  # data unit -> why
    reconciled: bool = False


def tasks_listing(project: int) -> str:
    return f"tasks?project={project}"


def create_tasks(client: TaskClient, project: int, units: Iterable[int], *, ledger: Ledger, target: str,
                 batch_size: int = 100, retry: RetryPolicy = RetryPolicy(),
                 sleep: Callable[[float], None] = time.sleep) -> TaskReport:
    report = TaskReport()
    wanted = sorted(set(units))
    states = ledger.task_states(target, project, wanted)
    report.existing = {u for u, s in states.items() if s == "created"}
    todo = [u for u in wanted if u not in report.existing]
    if todo and ("pending" in states.values() or not ledger.knows_project(target, project)
                 or ledger.listing_mark(target, tasks_listing(project)) is not None):
        todo = _reconcile(client, project, todo, ledger, target, report)
    for start in range(0, len(todo), batch_size):
        _send(client, project, todo[start : start + batch_size], ledger, target, report, retry, sleep)
    return report


def _reconcile(client: TaskClient, project: int, todo: list[int], ledger: Ledger, target: str, report: TaskReport,
               *, ours: bool = False) -> list[int]:
    report.reconciled = True
    read_new_records(ledger, target, tasks_listing(project),
                     lambda number, size: client.list_tasks({"project": project, "page": number, "page_size": size}),
                     lambda tasks: ledger.mark_tasks(target, project, tasks, "created"), task_key)
    states = ledger.task_states(target, project, todo)
    here = [(u, None) for u in todo if states.get(u) == "created"]
    for unit, task in here:
        if ours:
            report.created[unit] = task
        else:
            report.existing.add(unit)
    return [u for u in todo if states.get(u) != "created"]


def _send(client: TaskClient, project: int, chunk: list[int], ledger: Ledger, target: str, report: TaskReport,
          retry: RetryPolicy, sleep: Callable[[float], None], attempt: int = 1) -> None:
    ledger.mark_tasks(target, project, [(u, None) for u in chunk], "pending")
    try:
        response = client.create_tasks({"project": project, "data": [{"data_unit": u} for u in chunk]})
    except Exception as exc:
        status = getattr(exc, "status_code", None)
        if status in (400, 401, 403, 422):
            ledger.clear_pending_tasks(target, project, chunk)  # refused: nothing was written
            report.failed.update({u: redact(f"task not created: {type(exc).__name__}: {exc}") for u in chunk})
            return
        missing = chunk if status == 429 else _reconcile(client, project, chunk, ledger, target, report, ours=True)
        if missing and attempt < retry.max_attempts:
            sleep(retry.delay(attempt))
            _send(client, project, missing, ledger, target, report, retry, sleep, attempt + 1)
        elif missing:
            report.failed.update({u: redact(f"task not created after {attempt} attempts: {exc}") for u in missing})
        return
    ids = {int(t["data_unit"]): t.get("id") for t in (response if isinstance(response, list) else [])
           if isinstance(t, Mapping) and t.get("data_unit") is not None}
    ledger.mark_tasks(target, project, [(u, ids.get(u)) for u in chunk], "created")
    report.created.update({u: ids.get(u) for u in chunk})
