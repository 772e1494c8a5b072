"""A batch plan as a document a person reviews before anything is sent (the dry run).

Markdown, because the Dagster UI renders it on the ``validated_meta`` materialization and a terminal
shows it readably as it is.
"""

from __future__ import annotations

from synapse_dagster.core.plan.batch_plan import BatchPlan, UnitPlan
from synapse_dagster.core.tables.row_table import column_counts


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _unit_section(unit: UnitPlan) -> list[str]:
    status = "ready" if unit.is_valid else "held back"
    lines = [f"### `{unit.dataset_key}` ({status}, {unit.total_bytes:,} bytes)", "", "| spec | file | bytes |", "|---|---|---:|"]
    lines += [f"| {spec} | `{_cell(f.relative_path)}` | {f.size:,} |" for spec, f in sorted(unit.files.items())]
    lines += ["", "| meta field | value | from |", "|---|---|---|"]
    lines += [f"| {_cell(k)} | `{_cell(repr(v))}` | {_cell(unit.provenance.get(k, '?'))} |" for k, v in unit.meta.items()]
    lines += [""] + [f"- problem ({p.kind}): {p}" for p in unit.problems] + [f"- note: {n}" for n in unit.notes]
    return lines + [""]


def plan_markdown(plan: BatchPlan, *, unit_limit: int = 50, issue_limit: int = 100) -> str:
    valid, invalid = plan.valid_units, plan.invalid_units
    lines = [f"## Plan for batch `{plan.batch}`", ""]
    if plan.detection is not None:
        lines.append(f"**Pattern:** {plan.detection.describe()}")
        lines += [f"- {e}" for e in plan.detection.evidence]
        lines.append("")
    lines += [
        f"**Units:** {len(plan.units)} ({len(valid)} ready, {len(invalid)} held back); "
        f"**bytes to send:** {plan.bytes_to_send:,}",
        f"**Metadata sheet:** {plan.metadata_file or 'none'}",
        "",
    ]
    counts = plan.problem_counts()
    if counts:
        lines += ["| problem | units |", "|---|---:|"] + [f"| {k} | {v} |" for k, v in counts.most_common()] + [""]
    issues = column_counts(plan.file_issues, "kind", lambda i: i.kind)
    if issues:
        lines += ["**Files not in units:** " + ", ".join(f"{k} {v}" for k, v in issues.most_common()), ""]
        lines += ["| file | kind | reason |", "|---|---|---|"]
        lines += [f"| `{_cell(i.relative_path)}` | {i.kind} | {_cell(i.reason)} |" for i in plan.file_issues[:issue_limit]]
        if len(plan.file_issues) > issue_limit:
            lines.append(f"| … | | {len(plan.file_issues) - issue_limit} more |")
        lines.append("")
    for label, keys in (("Sheet rows matching no unit", plan.sheet_rows_without_unit),
                        ("Units without a sheet row", plan.units_without_sheet_row),
                        ("Sheet keys on several rows (their units are held back)", plan.sheet_duplicate_keys)):
        if keys:
            lines += [f"**{label}** ({len(keys)}): " + ", ".join(f"`{k}`" for k in keys[:issue_limit]), ""]
    if plan.sheet_notes:
        lines += ["**Sheet notes:**"] + [f"- {_cell(n)}" for n in plan.sheet_notes[:issue_limit]] + [""]
    shown = list(invalid[:unit_limit])  # held-back units first: they need a person
    shown += valid[: unit_limit - len(shown)]
    for unit in shown:
        lines += _unit_section(unit)
    if len(plan.units) > len(shown):
        lines.append(f"… and {len(plan.units) - len(shown)} more units")
    return "\n".join(lines).rstrip() + "\n"
