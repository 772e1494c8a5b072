"""Why a unit is held back, as text people read plus a kind that checks and reports count by."""

from __future__ import annotations


class ProblemKind:
    MISSING_SPEC = "missing_spec"
    AMBIGUOUS_FILES = "ambiguous_files"
    INVALID_META = "invalid_meta"
    DUPLICATE_KEY = "duplicate_dataset_key"
    UNSAFE_FILE = "unsafe_file"
    FILE_TOO_LARGE = "file_too_large"


# The batch's gates: each blocking check owns some kinds of problem.
CHECK_KINDS = {
    "required_specs_satisfied": (ProblemKind.MISSING_SPEC, ProblemKind.AMBIGUOUS_FILES),
    "meta_valid": (ProblemKind.INVALID_META, ProblemKind.DUPLICATE_KEY),
    "unsafe_files_excluded": (ProblemKind.UNSAFE_FILE, ProblemKind.FILE_TOO_LARGE),
}


class Problem(str):
    """A ``str`` (so reports join and compare it as text) that also knows its kind."""

    kind: str

    def __new__(cls, kind: str, message: str) -> Problem:
        obj = super().__new__(cls, message)
        obj.kind = kind
        return obj

    def __getnewargs__(self) -> tuple[str, str]:  # pickling (Dagster's IO manager) keeps the kind
        return (self.kind, str(self))
