"""Why a unit is held back, as text people read plus a kind that checks and reports count by."""

from __future__ import annotations


class ProblemKind:
    MISSING_SPEC = "missing_spec"
    AMBIGUOUS_FILES = "ambiguous_files"
    INVALID_META = "invalid_meta"
    DUPLICATE_KEY = "duplicate_dataset_key"
    UNSAFE_FILE = "unsafe_file"
    FILE_TOO_LARGE = "file_too_large"
    UNREADABLE_FILE = "unreadable_file"  # gone, not readable, or changed since it was listed
    BAD_CONTENT = "bad_content"  # empty, does not parse, or not the format its name says


class Problem(str):
    """A ``str`` (so reports join and compare it as text) that also knows its kind."""

    kind: str

    def __new__(cls, kind: str, message: str) -> Problem:
        obj = super().__new__(cls, message)
        obj.kind = kind
        return obj

    def as_row(self) -> tuple[str, str]:
        """(kind, message): how a batch table stores it."""
        return (self.kind, str(self))

    def __getnewargs__(self) -> tuple[str, str]:  # pickling (Dagster's IO manager) keeps the kind
        return (self.kind, str(self))
