"""A fix for a Dagster 1.13 bug this project would otherwise hit on every pooled backfill.

While a step waits for a concurrency-pool slot, the executor sleeps ``interval_to_next_pending_claim_check()``
seconds between claims; that returns ``min(0, …)``, never more than 0, so the wait spins a core at 100% and hits
the instance database in a tight loop (seen: one core busy for the 180 s a run waited on the ``synapse_api``
pool). Upstream noticed it (dagster-io/dagster#20367, closed unmerged). The fix returns the time until the next
pending claim is due, never less than 0. It is applied once, when the code location loads.
"""

from __future__ import annotations

import time

from dagster._core.execution.plan.instance_concurrency_context import InstanceConcurrencyContext


def _interval_to_next_pending_claim_check(self: InstanceConcurrencyContext) -> float:
    if not self._pending_claims or not self._pending_timeouts:
        return 0.0
    return max(0.0, min(ready_at for ready_at in self._pending_timeouts.values()) - time.time())


def fix_pool_wait_busy_loop() -> None:
    InstanceConcurrencyContext.interval_to_next_pending_claim_check = _interval_to_next_pending_claim_check
