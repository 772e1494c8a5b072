"""What ``init`` prints about a collection's units and a source's sample: the evidence behind each choice."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

from synapse_dagster.core.organize.grouping import FileIssue, IssueKind
from synapse_dagster.core.plan.batch_plan import UnitPlan
from synapse_dagster.core.setup.preview import Preview
from synapse_dagster.core.sizes import human_bytes

PREVIEW_UNITS = 5  # the first three, then up to two held back after them
_MAX_VALUE = 40


def preview_lines(shown: Preview) -> list[str]:
    """The sample, the pattern and its evidence, the sheet, the count of ready and held-back units, then units."""
    more = " (the sample stopped there: the batch holds more)" if shown.sample_full else ""
    what = f"batch '{shown.batch}'" if shown.batches else \
        f"the source (keys mode: each run's batch key takes the place of {shown.batch} in the dataset keys)"
    lines = [f"Sampled {what}: {shown.listed:,} files listed{more}"]
    if len(shown.batches) > 1:
        lines.append(f"  batch folders: {_some(shown.batches)}")
    lines.append(f"  pattern: {shown.detection.describe()}")
    lines += [f"    - {e}" for e in shown.detection.evidence]
    lines.append(_sheet_line(shown))
    plan, units = shown.plan, shown.plan.units
    held = len(plan.invalid_units)
    kinds = ", ".join(f"{k} {n}" for k, n in sorted(plan.problem_counts().items()))
    lines.append(f"  {len(units):,} unit(s) in the sample: {len(units) - held:,} ready, {held:,} held back"
                 + (f" ({kinds})" if kinds else ""))
    lines += _issue_lines(plan.file_issues)
    for unit in shown.first_units(PREVIEW_UNITS - 2):
        lines += unit_lines(unit)
    for unit in shown.first_held_back(2, after=PREVIEW_UNITS - 2):
        lines += unit_lines(unit)
    return lines


def _issue_lines(issues: Sequence[FileIssue]) -> list[str]:
    """Files in no unit, by kind; the unmatched and ambiguous ones (the user's to look at) with examples."""
    kinds = Counter(i.kind for i in issues)
    if not kinds:
        return []
    lines = ["  files in no unit: " + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))]
    worth = [i for i in issues if i.kind in (IssueKind.UNMATCHED, IssueKind.AMBIGUOUS, IssueKind.REFUSED)]
    lines += [f"    - {i.relative_path}: {i.reason}" for i in worth[:3]]
    return lines


def _sheet_line(shown: Preview) -> str:
    sheet = shown.sheet
    if sheet is None:
        return "  sheet: none found (meta.xlsx, meta.csv … at the top of the batch); meta comes from the other sources"
    missing = len(shown.plan.units_without_sheet_row)
    return (f"  sheet: {sheet.name}, key column '{sheet.key_column}', {len(sheet.rows):,} usable row(s)"
            + (f"; {missing} unit(s) find no row" if missing else ""))


def unit_lines(unit: UnitPlan) -> list[str]:
    state = "ready" if unit.is_valid else "held back: " + "; ".join(unit.problems)
    lines = [f"  ▸ {unit.group_key} → dataset_key {unit.dataset_key} [{state}]"]
    for spec, file in unit.files.items():
        lines.append(f"      {spec}: {file.relative_path} ({human_bytes(file.size)})")
    by_source: dict[str, list[str]] = {}
    for key, value in unit.meta.items():
        if key != "dataset_key":
            by_source.setdefault(unit.provenance.get(key, "?"), []).append(f"{key}={_short(value)}")
    if not by_source:
        lines.append("      meta: (none)")
    for source, fields in by_source.items():
        lines.append(f"      meta from {source}: {', '.join(fields)}")
    return lines


def _short(value: object) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= _MAX_VALUE else text[: _MAX_VALUE - 1] + "…"


def _some(names: list[str], n: int = 5) -> str:
    return ", ".join(names[:n]) + (f" and {len(names) - n} more" if len(names) > n else "")


def echo_all(lines: list[str], echo: Callable[[str], None]) -> None:
    for line in lines:
        echo(line)
