"""One check's outcome as plain data, and the guard that keeps a check's surprise from becoming a traceback."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum

from synapse_dagster.core.redaction import redact

_MAX_DETAIL = 400  # characters of an exception's text: enough to act on, short enough for one line


class Status(StrEnum):
    OK = "ok"
    WARN = "warn"  # worth knowing, not a failure: the exit code stays 0
    FAIL = "FAIL"
    SKIP = "skip"  # not run, because a check it depends on failed (the detail says which)


@dataclass(frozen=True)
class Check:
    """``name``: what was checked (``credentials``, ``pipeline 'scans'``); ``fix``: what to do when it failed,
    or ``None`` when the detail already says it. Both texts are redacted when made, so no token can leave here."""

    name: str
    status: Status
    detail: str
    fix: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "detail", redact(self.detail))
        object.__setattr__(self, "fix", redact(self.fix) if self.fix else None)

    @classmethod
    def ok(cls, name: str, detail: str) -> Check:
        return cls(name, Status.OK, detail)

    @classmethod
    def warn(cls, name: str, detail: str, fix: str | None = None) -> Check:
        return cls(name, Status.WARN, detail, fix)

    @classmethod
    def fail(cls, name: str, detail: str, fix: str | None = None) -> Check:
        return cls(name, Status.FAIL, detail, fix)

    @classmethod
    def skip(cls, name: str, reason: str) -> Check:
        return cls(name, Status.SKIP, reason)

    @property
    def passed(self) -> bool:
        return self.status in (Status.OK, Status.WARN)

    @property
    def line(self) -> str:
        """``ok    credentials: …`` / ``FAIL  pipeline 'scans': … — fix: …``: the status padded so details align."""
        return f"{self.status.value:<5} {self.name}: {self.detail}" + (f" — fix: {self.fix}" if self.fix else "")


def one_line(exc: BaseException) -> str:
    """An exception as one short, redacted line (``Type: message``), whatever its message spans."""
    text = " ".join(str(exc).split()) or "(no message)"
    if len(text) > _MAX_DETAIL:
        text = text[: _MAX_DETAIL - 1] + "…"
    return redact(f"{type(exc).__name__}: {text}")


def guarded(name: str, check: Callable[[], Check]) -> Check:
    """Run one check; an exception it did not expect becomes its FAIL line, so the doctor never prints a traceback."""
    try:
        return check()
    except Exception as exc:  # the point: whatever broke is reported as this check's failure
        return Check.fail(name, f"unexpected error: {one_line(exc)}")


def exit_code(checks: Iterable[Check]) -> int:
    """1 when any check failed; warnings and skips alone leave 0."""
    return 1 if any(c.status is Status.FAIL for c in checks) else 0
