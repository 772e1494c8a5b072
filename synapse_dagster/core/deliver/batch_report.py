"""The story of one delivered batch as one markdown document, on ``created_units`` in the Dagster UI: what was
planned, what landed, what was held back and why, a few units as they now are in Synapse, and the way there.

Untrusted text (file names, meta values, server errors) goes into table cells escaped and cut short.
"""

from __future__ import annotations

import json
from collections import Counter
from itertools import islice

from synapse_dagster.core.deliver.creation import CreationReport, UnitStatus
from synapse_dagster.core.deliver.upload import FileStatus, UploadReport
from synapse_dagster.core.plan.batch_plan import BatchPlan
from synapse_dagster.core.redaction import redact

SAMPLE_UNITS = 10
SAMPLE_PROBLEMS = 20
_CELL = 160  # characters of one table cell


def batch_markdown(plan: BatchPlan, uploads: UploadReport, created: CreationReport, *, collection_url: str) -> str:
    lines = [f"## Batch `{_cell(plan.batch)}`", "", *_summary(plan, uploads, created), ""]
    lines += _problems(plan, uploads, created)
    lines += _sample(plan, created)
    lines += ["", f"[Open the data collection in Synapse]({collection_url})"]
    return "\n".join(lines).rstrip() + "\n"


def _summary(plan: BatchPlan, uploads: UploadReport, created: CreationReport) -> list[str]:
    statuses = Counter(o.status for o in created.outcomes.values())
    files = Counter(f.status for f in uploads.files.values())
    held_back = len(plan.invalid_units) + len(created.held_back)
    units_failed = statuses[UnitStatus.FAILED] + len(created.skipped)
    rows = [("units planned", len(plan.units)), ("units held back", held_back),
            ("units created", statuses[UnitStatus.CREATED]), ("units already there", statuses[UnitStatus.EXISTING]),
            ("units failed", units_failed),
            ("files uploaded", files[FileStatus.UPLOADED]), ("files already there", files[FileStatus.ALREADY_UPLOADED]),
            ("files failed", files[FileStatus.FAILED]),
            ("bytes sent", f"{uploads.bytes_sent:,}")]
    if created.tasks is not None:
        rows.append(("tasks created", len(created.tasks.created)))
    verdict = "**Delivered in full.**" if not (held_back or units_failed or files[FileStatus.FAILED]) else \
        "**Delivered, with units held back or failed (below).**"
    return [verdict, "", "| | |", "|---|---:|", *(f"| {name} | {value} |" for name, value in rows)]


def _problems(plan: BatchPlan, uploads: UploadReport, created: CreationReport) -> list[str]:
    counts = plan.problem_counts()
    lines: list[str] = []
    if counts:
        lines += ["### Why units were held back", "", "| problem | units |", "|---|---:|"]
        lines += [f"| {_cell(kind)} | {count:,} |" for kind, count in counts.most_common()] + [""]
    failed = [(o.dataset_key, o.error or o.status) for o in created.outcomes.values() if o.status == UnitStatus.FAILED]
    failed += [(key, "; ".join(why)) for key, why in (*created.skipped, *created.held_back)]
    failed += [(path, cause) for cause, paths in uploads.by_cause(FileStatus.FAILED).items() for path in paths]
    if failed:
        lines += ["### Not delivered", "", "| unit or file | why |", "|---|---|"]
        lines += [f"| `{_cell(name)}` | {_cell(why)} |" for name, why in failed[:SAMPLE_PROBLEMS]]
        if len(failed) > SAMPLE_PROBLEMS:
            lines.append(f"| … | {len(failed) - SAMPLE_PROBLEMS:,} more |")
        lines.append("")
    return lines


def _sample(plan: BatchPlan, created: CreationReport) -> list[str]:
    """The first units that landed: their Synapse ID, their files' names per spec and their meta."""
    landed = {key: o for key, o in created.outcomes.items() if o.status in (UnitStatus.CREATED, UnitStatus.EXISTING)}
    shown = list(islice((u for u in plan.valid_units if u.dataset_key in landed), SAMPLE_UNITS))
    if not shown:
        return []
    lines = [f"### Sample units ({len(shown)} of {len(landed):,} in Synapse)", "",
             "| dataset_key | unit | files | meta |", "|---|---:|---|---|"]
    for unit in shown:
        names = ", ".join(f"{spec}: {f.name}" for spec, f in sorted(unit.files.items()))
        meta = json.dumps(unit.meta, ensure_ascii=False, sort_keys=True, default=str)
        lines.append(f"| `{_cell(unit.dataset_key)}` | {landed[unit.dataset_key].unit_id or ''} | {_cell(names)} | "
                     f"`{_cell(meta)}` |")
    return lines


def _cell(text: object) -> str:
    value = redact(" ".join(str(text).split())).replace("|", "\\|").replace("`", "'")
    return value if len(value) <= _CELL else value[: _CELL - 1] + "…"
