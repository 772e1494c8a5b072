"""The gates a batch passes before any byte is sent, as plain results the asset checks report.

A gate fails softly (warning) when some units are held back for its reason, which the batch can
live with: those units are quarantined and the rest goes on. It fails hard (error, which blocks the
upload) when more than ``max_invalid_fraction`` of the batch is held back, because then the batch
itself is probably wrong: a wrong pattern, a wrong sheet, the wrong collection.
"""

from __future__ import annotations

from dataclasses import dataclass

from synapse_dagster.core.plan.batch_plan import BatchPlan
from synapse_dagster.core.plan.problems import CHECK_KINDS

UPLOADABLE = "batch_is_uploadable"
GATE_DESCRIPTIONS = {
    "required_specs_satisfied": "Every uploaded unit has one file for each required spec.",
    "meta_valid": "Every uploaded unit's meta is typed and valid against the collection's meta schema.",
    "unsafe_files_excluded": "No file the SDK's content guard rejects, and none over max_file_size_mb, is uploaded.",
    UPLOADABLE: "At least one valid unit, and no more than max_invalid_fraction of the batch held back.",
}


@dataclass(frozen=True)
class GateResult:
    name: str
    passed: bool
    blocking_failure: bool  # True: the batch must not upload
    description: str
    held_back: list[str]  # group keys


def evaluate_gates(plan: BatchPlan, max_invalid_fraction: float) -> list[GateResult]:
    total = len(plan.units)
    results = []
    for name, kinds in CHECK_KINDS.items():
        bad = [u.group_key for u in plan.units_with(kinds)]
        share = len(bad) / total if total else 0.0
        if not bad:
            results.append(GateResult(name, True, False, f"all {total} units pass", []))
            continue
        over = share > max_invalid_fraction
        limit = f"limit {max_invalid_fraction:.0%}"
        results.append(GateResult(
            name, False, over,
            f"{len(bad)} of {total} units held back ({share:.0%}, {limit})" + ("; the batch is blocked" if over else
                                                                                 "; they are quarantined, the rest goes on"),
            bad,
        ))
    share = plan.invalid_fraction
    if not plan.valid_units:
        reason = "the batch holds no data units" if not total else f"none of the {total} units is valid"
        results.append(GateResult(UPLOADABLE, False, True, reason, [u.group_key for u in plan.invalid_units]))
    else:
        ok = share <= max_invalid_fraction
        results.append(GateResult(
            UPLOADABLE, ok, not ok,
            f"{len(plan.valid_units)} of {total} units valid ({share:.0%} held back, limit {max_invalid_fraction:.0%})",
            [u.group_key for u in plan.invalid_units],
        ))
    return results
