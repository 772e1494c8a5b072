"""The gates a batch passes before any byte is sent, as plain results the asset checks report.

A gate fails softly (warning) when some units are held back for its reason, which the batch can
live with: those units are quarantined and the rest goes on. It fails hard (error, which blocks the
upload) when more than ``max_invalid_fraction`` of the batch is held back, because then the batch
itself is probably wrong: a wrong pattern, a wrong sheet, the wrong collection.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import islice

from synapse_dagster.core.plan.batch_plan import BatchPlan, UnitPlan
from synapse_dagster.core.tables.row_table import RowTable
from synapse_dagster.core.problems import ProblemKind


@dataclass(frozen=True)
class Gate:
    name: str
    description: str
    kinds: tuple[str, ...]  # the problem kinds it owns; empty: the batch as a whole


UPLOADABLE = "batch_is_uploadable"
# Every gate, in the order the checks run. A new gate is one row here.
GATES = (
    Gate("required_specs_satisfied", "Every uploaded unit has one file for each required spec.",
         (ProblemKind.MISSING_SPEC, ProblemKind.AMBIGUOUS_FILES)),
    Gate("meta_valid", "Every uploaded unit's meta is typed and valid against the collection's meta schema.",
         (ProblemKind.INVALID_META, ProblemKind.DUPLICATE_KEY)),
    Gate("unsafe_files_excluded",
         "No file the SDK's content guard rejects, and none over max_file_size_mb, is uploaded.",
         (ProblemKind.UNSAFE_FILE, ProblemKind.FILE_TOO_LARGE)),
    Gate("files_readable_and_well_formed",
         "Every uploaded unit's files could be read as they were listed, and hold what their names say (not empty, "
         "labels that parse, images of their extension's format); content_policy decides what only warns.",
         (ProblemKind.UNREADABLE_FILE, ProblemKind.BAD_CONTENT)),
    Gate(UPLOADABLE, "At least one valid unit, and no more than max_invalid_fraction of the batch held back.", ()),
)


@dataclass(frozen=True)
class GateResult:
    name: str
    passed: bool
    blocking_failure: bool  # True: the batch must not upload
    description: str
    held_back: list[str]  # group keys, the first HELD_BACK_SHOWN of them
    held_back_count: int = 0


HELD_BACK_SHOWN = 50


def evaluate_gates(plan: BatchPlan, max_invalid_fraction: float) -> list[GateResult]:
    return [evaluate_gate(plan, gate.name, max_invalid_fraction) for gate in GATES]


def evaluate_gate(plan: BatchPlan, name: str, max_invalid_fraction: float) -> GateResult:
    gate = next(g for g in GATES if g.name == name)
    return _kind_gate(plan, gate, max_invalid_fraction) if gate.kinds else _uploadable(plan, max_invalid_fraction)


def _first_keys(units: Sequence[UnitPlan]) -> list[str]:
    """The group keys of the first units, read without decoding a whole batch table."""
    if isinstance(units, RowTable):
        return list(islice(units.values("group_key"), HELD_BACK_SHOWN))
    return [u.group_key for u in units[:HELD_BACK_SHOWN]]


def _kind_gate(plan: BatchPlan, gate: Gate, max_invalid_fraction: float) -> GateResult:
    total = len(plan.units)
    bad = plan.units_with(gate.kinds)
    if not bad:
        return GateResult(gate.name, True, False, f"all {total} units pass", [])
    share = len(bad) / total
    over = share > max_invalid_fraction
    verdict = "; the batch is blocked" if over else "; they are quarantined, the rest goes on"
    return GateResult(gate.name, False, over, f"{len(bad)} of {total} units held back ({share:.0%}, limit "
                      f"{max_invalid_fraction:.0%}){verdict}", _first_keys(bad), len(bad))


def _uploadable(plan: BatchPlan, max_invalid_fraction: float) -> GateResult:
    total = len(plan.units)
    share = plan.invalid_fraction
    invalid = plan.invalid_units
    held_back, count = _first_keys(invalid), len(invalid)
    valid = len(plan.valid_units)
    if not valid:
        reason = "the batch holds no data units" if not total else f"none of the {total} units is valid"
        return GateResult(UPLOADABLE, False, True, reason, held_back, count)
    ok = share <= max_invalid_fraction
    return GateResult(UPLOADABLE, ok, not ok, f"{valid} of {total} units valid ({share:.0%} held back, "
                      f"limit {max_invalid_fraction:.0%})", held_back, count)
