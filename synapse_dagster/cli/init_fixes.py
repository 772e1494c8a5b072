"""What init offers to change after a preview: the pattern, the sheet's key column, a regex for missing fields.

Each offer is made once; a person takes it or declines it, and without a terminal the offer becomes a one-line
hint naming the flag that would take it. A taken offer changes the draft, and the units are previewed again.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from synapse_dagster.cli.prompts import Question
from synapse_dagster.core.organize.layouts import Pattern
from synapse_dagster.core.setup.preview import Preview

if TYPE_CHECKING:
    from synapse_dagster.cli.init import Session

PATTERNS = [("nested: one folder per unit (P001/scan.png, P001/label.json)", "nested"),
            ("type_separated: one folder per spec (images/001.png, labels/001.json)", "type_separated"),
            ("flat: units by name stem in one folder (s_001.png, s_001.json)", "flat"),
            ("deep_nested: unit folders with a sub-folder per spec (P001/img/scan.png)", "deep_nested")]


def offer_fix(session: Session, shown: Preview) -> bool:
    """True when the draft changed (preview again)."""
    return any(offer(session, shown) for offer in (_pattern, _sidecars, _key_column, _missing_fields))


def _once(session: Session, name: str) -> bool:
    if name in session.declined:
        return False
    session.declined.add(name)
    return True


def _pattern(session: Session, shown: Preview) -> bool:
    if not session.ui.interactive or "pattern" in session.values or not _once(session, "pattern"):
        return False
    if session.ui.confirm(f"Are the files organized as {shown.detection.pattern.value}?", default=True):
        session.values["pattern"] = "auto"  # its note, with the evidence, is written with the other findings
        return False
    chosen = session.ui.choose("How are they organized?", PATTERNS, default=Pattern.NESTED.value)
    session.values["pattern"], session.notes["pattern"] = chosen, "chosen in init (detection saw otherwise)"
    return True


def _key_column(session: Session, shown: Preview) -> bool:
    sheet = shown.sheet
    if sheet is None or not shown.plan.units_without_sheet_row or not _once(session, "key_column"):
        return False
    units = len(shown.plan.units)
    better = [(c, n) for c, n in shown.key_column_candidates() if c != sheet.key_column]
    session.say(f"{len(shown.plan.units_without_sheet_row)} of {units} sampled unit(s) find no row in {sheet.name} "
                f"by column '{sheet.key_column}'.")
    if not better:
        session.say("  no column of the sheet names them either; check that the sheet belongs to this batch")
        return False
    if not session.ui.interactive:
        session.say(f"  hint: --key-column {better[0][0]} names {better[0][1]} of them")
        return False
    choices = [(f"{c}: names {n} of {units} units", c) for c, n in better[:8]] + [("keep it as it is", None)]
    chosen = session.ui.choose("Which column holds the unit names?", choices, default=better[0][0])
    if chosen is None:
        return False
    session.values.setdefault("metadata", {})["key_column"] = chosen
    session.notes["metadata.key_column"] = f"names {dict(better)[chosen]} of {units} sampled units in {sheet.name}"
    return True


def _sidecars(session: Session, shown: Preview) -> bool:
    """Files named like meta (``meta.yaml`` in unit folders, ``*.meta.json``) that no setting reads yet."""
    found = shown.sidecar_like
    if not found or not _once(session, "sidecars"):
        return False
    listed = ", ".join(f"{n} {entry}" for entry, n in found.most_common())
    session.say(f"The sample holds files that look like sidecar meta: {listed}.")
    if not session.ui.interactive:
        session.say(f"  hint: --sidecars {','.join(found)} reads them into each unit's meta")
        return False
    if not session.ui.confirm("Read them as each unit's meta (metadata.sidecars)?", default=True):
        return False
    metadata = session.values.setdefault("metadata", {})
    metadata["sidecars"] = [*metadata.get("sidecars", []), *found]
    session.notes["metadata.sidecars"] = f"{sum(found.values())} such files in {shown.sampled}"
    return True


def _missing_fields(session: Session, shown: Preview) -> bool:
    missing = {f: n for f, n in shown.missing_fields().most_common() if f != "dataset_key"}
    if not missing or not _once(session, "filename_regex"):
        return False
    listed = ", ".join(f"{f} ({n} unit(s))" for f, n in missing.items())
    names = sorted({f.name for u in shown.first_units(3) for f in u.files.values()})[:4]
    session.say(f"Required meta field(s) missing from sampled units: {listed}.")
    session.say(f"  A filename_regex can read them from file names such as {', '.join(names)}, "
                r"e.g. '(?P<patient_id>P\d+)_(?P<age>\d+)'.")
    question = Question("--filename-regex", "filename_regex (Enter to skip):",
                        check=lambda a: regex_problem(a, names), default="")
    if not session.ui.interactive:
        session.say("  hint: pass --filename-regex, or fill the fields in the sheet")
        return False
    answer = session.ui.text(question, None)
    if not answer:
        return False
    session.values.setdefault("metadata", {})["filename_regex"] = answer
    groups = ", ".join(re.compile(answer).groupindex)
    session.notes["metadata.filename_regex"] = f"gives {groups} from the file names"
    return True


def regex_problem(answer: str, names: list[str]) -> str | None:
    """A regex init will take: it compiles, has named groups, and finds something in a sampled name."""
    if not answer:
        return None
    try:
        compiled = re.compile(answer)
    except re.error as exc:
        return f"not a regular expression: {exc}"
    if not compiled.groupindex:
        return "it has no named group such as (?P<age>\\d+); each named group becomes a meta field"
    if names and not any(compiled.search(n) for n in names):
        return f"it finds nothing in the sampled names ({', '.join(names)})"
    return None
