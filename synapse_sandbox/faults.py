"""Fault injection for the sandbox: the failures a real Synapse and its proxies produce, on demand.

A rule matches requests by method and path regex and fires with a probability, at most ``times``
times. Actions:

- ``error``: answer ``status`` (default 503) *before* doing anything, as a proxy in front of the
  backend would; nothing is committed, so the SDK's retries on 502/503/504 are harmless. With
  ``latency_ms``, the request is held that long first (a request that never reaches the backend).
- ``rate_limit``: answer 429 with ``Retry-After: retry_after`` before doing anything.
- ``latency``: sleep ``latency_ms`` first, then serve normally.
- ``lose_response``: serve and commit, then drop the connection without an answer (a lost response).
- ``error_after_commit``: serve and commit, then answer ``status`` anyway. This is the bug the SDK's
  POST retries turn into duplicates; the sandbox only ever does it when asked.
- ``reset``: serve and commit, then reset the connection (TCP RST): the client sees "connection reset by peer".
- ``slow_response``: serve and commit, then wait ``latency_ms`` before answering, so a client with a shorter
  read timeout gives up on a write that happened (a timeout after commit).
"""

from __future__ import annotations

import random
import re
import threading
from dataclasses import dataclass, field
from typing import Any

ACTIONS = ("error", "rate_limit", "latency", "lose_response", "error_after_commit", "reset", "slow_response")
BEFORE = ("error", "rate_limit", "latency")


class FaultConfigError(ValueError):
    pass


def _number(raw: dict[str, Any], name: str, default: Any, where: str, kind: type) -> Any:
    """A numeric field of a rule, or a 400-worthy error naming it (never a 500 later, on every request)."""
    value = raw.get(name, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and value != int(value)):
        raise FaultConfigError(f"{where}: {name} must be a{'n integer' if kind is int else ' number'}, not {value!r}")
    if value < 0:
        raise FaultConfigError(f"{where}: {name} must not be negative")
    return kind(value)


@dataclass
class FaultRule:
    action: str
    method: str | None = None
    path: re.Pattern[str] | None = None
    probability: float = 1.0
    times: int | None = None
    status: int = 503
    retry_after: int = 1
    latency_ms: int = 0
    fired: int = 0

    @classmethod
    def parse(cls, raw: Any, index: int) -> FaultRule:
        where = f"fault rule #{index + 1}"
        if not isinstance(raw, dict):
            raise FaultConfigError(f"{where}: must be an object")
        unknown = set(raw) - {"match", "action", "probability", "times", "status", "retry_after", "latency_ms"}
        if unknown:
            raise FaultConfigError(f"{where}: unknown field(s) {sorted(unknown)}")
        action = raw.get("action")
        if action not in ACTIONS:
            raise FaultConfigError(f"{where}: action must be one of {list(ACTIONS)}")
        match = raw.get("match") or {}
        try:
            path = re.compile(match["path"]) if match.get("path") else None
        except re.error as exc:
            raise FaultConfigError(f"{where}: match.path is not a valid regex: {exc}") from None
        probability = _number(raw, "probability", 1.0, where, float)
        if not 0.0 <= probability <= 1.0:
            raise FaultConfigError(f"{where}: probability must be between 0 and 1")
        times = None if raw.get("times") is None else _number(raw, "times", 0, where, int)
        return cls(
            action=action,
            method=(match.get("method") or "").upper() or None,
            path=path,
            probability=probability,
            times=times,
            status=_number(raw, "status", 429 if action == "rate_limit" else 503, where, int),
            retry_after=_number(raw, "retry_after", 1, where, int),
            latency_ms=_number(raw, "latency_ms", 0, where, int),
        )

    def matches(self, method: str, path: str) -> bool:
        if self.times is not None and self.fired >= self.times:
            return False
        if self.method and self.method != method:
            return False
        return not self.path or bool(self.path.search(path.lstrip("/")))

    def describe(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "method": self.method,
            "path": self.path.pattern if self.path else None,
            "probability": self.probability,
            "times": self.times,
            "fired": self.fired,
        }


@dataclass
class FaultInjector:
    rules: list[FaultRule] = field(default_factory=list)
    rng: random.Random = field(default_factory=random.Random)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def configure(self, raw_rules: Any, seed: int | None = None) -> None:
        if not isinstance(raw_rules, list):
            raise FaultConfigError("'rules' must be a list")
        rules = [FaultRule.parse(r, i) for i, r in enumerate(raw_rules)]
        with self._lock:
            self.rules = rules
            if seed is not None:
                self.rng.seed(seed)

    def pick(self, method: str, path: str) -> FaultRule | None:
        """The first matching rule that fires for this request (counted as fired), or ``None``."""
        with self._lock:
            for rule in self.rules:
                if rule.matches(method, path) and self.rng.random() < rule.probability:
                    rule.fired += 1
                    return rule
        return None

    def describe(self) -> list[dict[str, Any]]:
        with self._lock:
            return [r.describe() for r in self.rules]
