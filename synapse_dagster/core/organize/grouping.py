"""Grouping files into data units and mapping each file to a file specification.

The invariant users rely on: every listed file ends up in exactly one place, either in one unit
under one spec, or in the report with the reason it was left out (refused by the listing, excluded
junk, metadata, no unit, no spec, or one of several candidates). Nothing is silently picked or
dropped: two candidates for one spec in one unit are both reported and the unit is held back.
Keys are NFC, so the two Unicode spellings of a name are one name; case still tells names apart.
"""

from __future__ import annotations

import pickle
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import groupby
from operator import itemgetter

from synapse_dagster.core.memo import BoundedMemo
from synapse_dagster.core.organize.rules import RuleSet
from synapse_dagster.core.sources.files import (
    FILE_CODEC, FILE_COLUMNS, SourceFile, file_from_row, file_row, path_parts, spec_files_from_rows, spec_files_rows)
from synapse_dagster.core.tables.row_table import (
    Codec, RowTable, Spill, TableWriter, column_counts, column_sum, matching)
from synapse_dagster.core.organize.detection import Detection
from synapse_dagster.core.organize.layouts import Pattern, SpecNames, nfc, place
from synapse_dagster.core.problems import Problem, ProblemKind
from synapse_dagster.core.organize.specs import CollectionSpecs, FileSpec, OrganizationError


class IssueKind:
    REFUSED = "refused"  # the listing marked it unsafe to read
    EXCLUDED = "excluded"
    METADATA = "metadata"
    UNMATCHED = "unmatched"
    AMBIGUOUS = "ambiguous"


@dataclass(frozen=True, slots=True)
class FileIssue:
    """A file that is not part of any unit, and why."""

    relative_path: str
    kind: str
    reason: str
    group_key: str | None = None
    source_spec: str | None = None


@dataclass(frozen=True)
class Organization:
    """How a batch is organized: a resolved pattern (never ``auto``) and what refines it."""

    pattern: Pattern
    rules: RuleSet | None = None
    spec_aliases: Mapping[str, Sequence[str]] = field(default_factory=dict)
    sidecars: tuple[str, ...] = ()  # 'meta.yaml' (one per unit folder) or '*.meta.json' (one per stem)


@dataclass(slots=True)
class PlannedUnit:
    group_key: str
    files: dict[str, SourceFile] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    sidecars: list[SourceFile] = field(default_factory=list)

    @property
    def is_complete(self) -> bool:
        return not self.problems

    @property
    def total_bytes(self) -> int:
        return sum([f.size for f in self.files.values()])


@dataclass
class GroupingResult:
    units: Sequence[PlannedUnit]  # a RowTable when grouped here; a list is fine for small hand-made results
    issues: Sequence[FileIssue]
    pattern: Pattern | None = None
    detection: Detection | None = None  # how the pattern was chosen, for the report

    @property
    def complete_units(self) -> Sequence[PlannedUnit]:
        return matching(self.units, lambda u: u.is_complete, "complete = 1")

    @property
    def incomplete_units(self) -> Sequence[PlannedUnit]:
        return matching(self.units, lambda u: not u.is_complete, "complete = 0")

    def issue_counts(self) -> Counter[str]:
        return column_counts(self.issues, "kind", lambda i: i.kind)

    def sidecar_count(self) -> int:
        return column_sum(self.units, "sidecars", lambda u: len(u.sidecars))

    def issues_of(self, kind: str) -> Sequence[FileIssue]:
        return matching(self.issues, lambda i: i.kind == kind, "kind = ?", (kind,))


def _issue_row(i: FileIssue) -> tuple:
    return (i.relative_path, i.kind, i.reason, i.group_key, i.source_spec)


def _issue_from_row(row: tuple) -> FileIssue:
    return FileIssue(*row)


ISSUE_CODEC = Codec("file_issue", ("relative_path", "kind", "reason", "group_key", "source_spec"), _issue_row,
                    _issue_from_row, texts=(0, 3))


def _placed_row(item: tuple) -> tuple:
    key, sidecar, spec, seq, file = item
    return (key, sidecar, spec, seq, *file_row(file))


def _placed_from_row(row: tuple) -> tuple:
    return (row[0], row[1], row[2], row[3], file_from_row(row[4:]))


PLACED_CODEC = Codec("placed_file", ("key", "sidecar", "spec", "seq", *FILE_COLUMNS), _placed_row, _placed_from_row,
                     texts=(0, 4, 5))


def _unit_row(u: PlannedUnit) -> tuple:
    payload = (spec_files_rows(u.files), tuple(p.as_row() for p in u.problems), tuple(tuple(f) for f in u.sidecars))
    return (u.group_key, int(u.is_complete), len(u.sidecars), pickle.dumps(payload, pickle.HIGHEST_PROTOCOL))


def _complete_unit_row(key: str, rows: Sequence[Placement]) -> tuple:
    """``_unit_row`` of the unit ``rows`` make when they are one file per spec, no sidecar and nothing missing:
    nearly every unit of a batch, written without building it first."""
    files = tuple((spec, *file) for _, _, spec, _, file in rows)
    return (key, 1, 0, pickle.dumps((files, (), ()), pickle.HIGHEST_PROTOCOL))


def _unit_from_row(row: tuple) -> PlannedUnit:
    files, problems, sidecars = pickle.loads(row[3])
    return PlannedUnit(row[0], spec_files_from_rows(files), [Problem(*p) for p in problems],
                       [file_from_row(f) for f in sidecars])


PLANNED_UNIT_CODEC = Codec("planned_unit", ("group_key", "complete", "sidecars", "payload"), _unit_row, _unit_from_row)


def check_organization(organization: Organization, specs: CollectionSpecs) -> None:
    known = {s.name for s in specs.specs}
    for rule in organization.rules.file_rules if organization.rules else ():
        if rule.spec not in known:
            raise OrganizationError(f"rules.file_rules: pattern '{rule.pattern}' maps to spec '{rule.spec}', which data "
                                    f"collection {specs.collection_id} does not define (it has {sorted(known)})")
    for spec in organization.spec_aliases:
        if spec not in known:
            raise OrganizationError(f"spec_aliases names spec '{spec}', which data collection {specs.collection_id} "
                                    f"does not define (it has {sorted(known)})")


def group_files(
    files: Iterable[SourceFile],
    specs: CollectionSpecs,
    organization: Organization,
    *,
    reserved: Mapping[str, str] | None = None,
    spill: Spill | None = None,
) -> GroupingResult:
    """Group a batch's files into units. ``reserved`` maps relative paths (e.g. the metadata sheet) to a reason.

    Units are assembled one at a time, so memory stays flat however big the batch; the units and the issues are
    tables in ``spill`` (a temporary folder by default). See :class:`_Grouper` for how.
    """
    check_organization(organization, specs)
    spill = spill or Spill()
    if not isinstance(files, Sequence):  # a stream can be read once; a table can be read again
        files = spill.table("listed", FILE_CODEC, files)
    grouper = _Grouper(specs, organization, reserved or {}, spill)
    if organization.pattern not in (Pattern.TYPE_SEPARATED, Pattern.MULTI_PATH):
        streamed = grouper.streamed(files)
        if streamed is not None:
            return streamed
    return grouper.sorted(files)


Placement = tuple[str, int, str, int, SourceFile]  # (unit key, is a sidecar, spec, position in the listing, file)


class _Grouper:
    """Places each file (unit key, spec) as the listing streams by, then assembles units.

    A nested batch is listed in key order, so its units are assembled as the placements stream by
    (:meth:`streamed`); a batch whose keys come back to an earlier one (type-separated folders, stems across
    sources) has its placements written to a table that SQLite reads back in key order (:meth:`sorted`).
    """

    def __init__(self, specs: CollectionSpecs, organization: Organization, reserved: Mapping[str, str],
                 spill: Spill) -> None:
        self.specs, self.organization, self.reserved, self.spill = specs, organization, reserved, spill
        self.choose = _spec_choice(specs, SpecNames(specs, organization.spec_aliases))
        self.required = frozenset(s.name for s in specs.required)

    def _complete(self, rows: list[Placement]) -> bool:
        """Sidecar-free ``rows`` hold one file per spec and every required spec."""
        names = {row[2] for row in rows}
        return len(names) == len(rows) and self.required <= names

    def streamed(self, files: Sequence[SourceFile]) -> GroupingResult | None:
        """The grouping if every key came in order, else ``None`` (and nothing written is kept)."""
        issues, late = self.spill.writer("issues", ISSUE_CODEC), self.spill.writer("late_issues", ISSUE_CODEC)
        units, orphans = self.spill.writer("units", PLANNED_UNIT_CODEC), []
        current: str | None = None
        rows: list[Placement] = []
        for placement in self._placements(files, issues):
            if placement[0] != current:
                if current is not None and placement[0] < current:
                    for writer in (issues, late, units):
                        writer.close().drop()
                    return None
                if current is not None:
                    self._add(current, sorted(rows, key=itemgetter(1, 2)), units, late, orphans)
                current, rows = placement[0], []
            rows.append(placement)
        if current is not None:
            self._add(current, sorted(rows, key=itemgetter(1, 2)), units, late, orphans)
        late_issues = late.close()
        issues.extend(late_issues)  # candidates of ambiguous units come after the files' own issues, as sorted
        late_issues.drop()
        issues.extend(orphans)
        return GroupingResult(units=units.close(), issues=issues.close(), pattern=self.organization.pattern)

    def sorted(self, files: Sequence[SourceFile]) -> GroupingResult:
        issues = self.spill.writer("issues", ISSUE_CODEC)
        placed = self.spill.table("placed", PLACED_CODEC, self._placements(files, issues))
        orphans: list[FileIssue] = []
        with self.spill.writer("units", PLANNED_UNIT_CODEC) as units:
            for key, rows in groupby(placed.ordered("key, sidecar, spec, seq"), key=itemgetter(0)):
                self._add(key, rows, units, issues, orphans)
        placed.drop()
        issues.extend(orphans)
        return GroupingResult(units=units.table, issues=issues.close(), pattern=self.organization.pattern)

    def _placements(self, files: Iterable[SourceFile], issues: TableWriter[FileIssue]) -> Iterator[Placement]:
        """Every file either placed (yielded) or reported in ``issues``."""
        specs, organization, reserved = self.specs, self.organization, self.reserved
        for seq, file in enumerate(files):
            if file.refused_reason or file.excluded_reason or (reserved and file.relative_path in reserved):
                aside = _set_aside(file, reserved)
                if aside is not None:
                    issues.append(aside)
                    continue
            sidecar = _sidecar_key(file, organization, specs) if organization.sidecars else None
            if sidecar is not None:
                key, reason = sidecar
                if key is None:
                    issues.append(FileIssue(file.relative_path, IssueKind.UNMATCHED, reason, source_spec=file.source_spec))
                else:
                    yield (key, 1, "", seq, file)
                continue
            key, spec_name, kind, reason = _locate(file, specs, self.choose, organization)
            if spec_name is None:
                issues.append(FileIssue(file.relative_path, kind, reason, key, file.source_spec))
            else:
                yield (key, 0, spec_name, seq, file)

    def _add(self, key: str, rows: Iterable[Placement], units: TableWriter[PlannedUnit],
             issues: TableWriter[FileIssue], orphans: list[FileIssue]) -> None:
        """One key's placements (specs in order, then sidecars) as a unit, or as orphaned sidecars."""
        rows = rows if isinstance(rows, list) else list(rows)
        if not rows[-1][1] and self._complete(rows):
            units.append_row(_complete_unit_row(key, rows))
            return
        candidates: dict[str, list[SourceFile]] = {}
        sidecars = []
        for _, is_sidecar, spec_name, _, file in rows:
            if is_sidecar:
                sidecars.append(file)
            else:
                candidates.setdefault(spec_name, []).append(file)
        if candidates:
            units.append(_assemble(key, candidates, sidecars, self.specs, issues))
        else:
            orphans += [FileIssue(f.relative_path, IssueKind.METADATA, f"sidecar metadata for unit '{key}', which "
                                  "has no data files", key, f.source_spec) for f in sidecars]


def _assemble(key: str, candidates: dict[str, list[SourceFile]], sidecars: list[SourceFile], specs: CollectionSpecs,
              issues: TableWriter[FileIssue]) -> PlannedUnit:
    """One unit from its candidates per spec: one file per spec, or every candidate reported and the unit held back."""
    unit = PlannedUnit(group_key=key, sidecars=sidecars)
    for spec_name, spec_files in candidates.items():  # in spec order: the table was read sorted
        if len(spec_files) == 1:
            unit.files[spec_name] = spec_files[0]
            continue
        unit.problems.append(Problem(ProblemKind.AMBIGUOUS_FILES, _ambiguity(key, spec_name, spec_files)))
        issues.extend(FileIssue(f.relative_path, IssueKind.AMBIGUOUS, _candidate_reason(f, spec_files, key, spec_name),
                                key, f.source_spec) for f in spec_files)
    for spec in specs.required:
        if spec.name not in candidates:
            unit.problems.append(Problem(ProblemKind.MISSING_SPEC, f"missing required spec '{spec.describe()}'"))
    return unit


def _set_aside(file: SourceFile, reserved: Mapping[str, str]) -> FileIssue | None:
    """Files that are never data, whatever the pattern. Refused comes first: an unsafe path is reported as
    unsafe even when its name also looks like junk or like the sheet."""
    if file.refused_reason:
        return FileIssue(file.relative_path, IssueKind.REFUSED, file.refused_reason, source_spec=file.source_spec)
    if file.excluded_reason:
        return FileIssue(file.relative_path, IssueKind.EXCLUDED, file.excluded_reason, source_spec=file.source_spec)
    if file.source_spec is None and file.relative_path in reserved:
        return FileIssue(file.relative_path, IssueKind.METADATA, reserved[file.relative_path])
    return None


def _locate(
    file: SourceFile, specs: CollectionSpecs, choose: SpecChoice, organization: Organization
) -> tuple[str | None, str | None, str, str]:
    """(group key, spec name, issue kind, reason); a spec name when the file belongs in a unit."""
    parts = _nfc_parts(file)
    stem, extension = specs.split_name(parts[-1])
    if organization.pattern is Pattern.RULES:
        rules = organization.rules or RuleSet(())
        key = rules.group_key("/".join(parts), "/".join((*parts[:-1], stem)))
        if key is None:
            return None, None, IssueKind.UNMATCHED, "rules.group_key_regex does not match this path"
        if not rules.file_rules:  # no file rules: extensions and names pick the spec
            spec_name, kind, reason = choose((file.source_spec, extension, *parts[:-1]))
            return key, spec_name, kind, reason
        rule = rules.spec_for("/".join(parts))
        if rule is None:
            return key, None, IssueKind.UNMATCHED, "no rules.file_rules pattern matches this path"
        spec = specs.spec(rule.spec)
        if spec is not None and spec.extensions and not spec.accepts(extension):
            return key, None, IssueKind.UNMATCHED, (f"rule '{rule.pattern}' maps it to spec '{spec.describe()}', which "
                                                    f"does not accept '{extension or '(none)'}'")
        return key, rule.spec, "", ""
    located = place(Pattern.MULTI_PATH if file.source_spec else organization.pattern, parts, stem)
    if located.group_key is None:
        return None, None, IssueKind.UNMATCHED, located.reason
    spec_name, kind, reason = choose((file.source_spec, extension, *located.name_hints))
    return located.group_key, spec_name, kind, reason


SpecChoice = BoundedMemo[tuple, tuple[str | None, str, str]]  # (source spec, extension, *name hints) -> _spec_for


def _spec_choice(specs: CollectionSpecs, names: SpecNames) -> SpecChoice:
    """:func:`_spec_for`, remembered: its answer depends only on the file's source, extension and name hints."""
    return BoundedMemo(lambda key: _spec_for(key[0], key[1], specs, names, key[2:]))


def _spec_for(
    source_spec: str | None, extension: str, specs: CollectionSpecs, names: SpecNames, hints: Sequence[str]
) -> tuple[str | None, str, str]:
    """Spec by source (multi-path), then by a folder/file name that names a spec, then by extension."""
    ext_label = extension or "(none)"
    if source_spec is not None:
        spec = specs.spec(source_spec)
        if spec is None:
            return None, IssueKind.UNMATCHED, f"source of spec '{source_spec}', which the collection does not define"
        if spec.extensions and not spec.accepts(extension):
            return None, IssueKind.UNMATCHED, f"extension '{ext_label}' is not accepted by spec '{spec.describe()}'"
        return spec.name, "", ""
    named = names.named(hints)
    if len(named) == 1:
        spec = named[0]
        if spec.extensions and not spec.accepts(extension):
            return None, IssueKind.UNMATCHED, (f"its folder or name says spec '{spec.name}', which does not accept "
                                               f"'{ext_label}' ({spec.describe()})")
        return spec.name, "", ""
    if len(named) > 1:
        return None, IssueKind.AMBIGUOUS, f"its path names several specs ({_names(named)}); rename or add a rule"
    matches = specs.specs_for_extension(extension) if extension else []
    if len(matches) == 1:
        return matches[0].name, "", ""
    if not matches:
        known = "; ".join(s.describe() for s in specs.specs)
        return None, IssueKind.UNMATCHED, f"extension '{ext_label}' matches no file specification ({known})"
    return None, IssueKind.AMBIGUOUS, (f"extension '{extension}' fits several specs ({_names(matches)}); name its folder "
                                       "after a spec, add spec_aliases, or add a rule")


def _sidecar_key(file: SourceFile, organization: Organization, specs: CollectionSpecs) -> tuple[str | None, str] | None:
    """``None`` when the file is no sidecar; else (the unit key it describes or ``None``, reason when ``None``)."""
    if not organization.sidecars:
        return None
    parts = _nfc_parts(file)
    name = parts[-1].lower()
    for entry in organization.sidecars:
        entry_l = nfc(entry).lower()
        if entry_l.startswith("*"):
            suffix = entry_l[1:]
            if not name.endswith(suffix) or len(name) == len(suffix):
                continue
            stem = parts[-1][: -len(suffix)]
            pseudo = (*parts[:-1], f"{stem}.sidecar")
        elif name == entry_l:
            if not parts[:-1]:
                return None, f"sidecar '{file.name}' at the top of the batch belongs to no unit folder"
            stem = ""
            pseudo = (*parts[:-1], "sidecar")
        else:
            continue
        if organization.pattern is Pattern.RULES:
            rules = organization.rules or RuleSet(())
            key = rules.group_key("/".join(pseudo), "/".join((*pseudo[:-1], stem)) if stem else "/".join(pseudo[:-1]))
            return (key, "") if key else (None, f"rules.group_key_regex does not match sidecar '{file.relative_path}'")
        pattern = Pattern.MULTI_PATH if file.source_spec else organization.pattern
        if not stem and pattern not in (Pattern.NESTED, Pattern.DEEP_NESTED):
            return None, f"a per-folder sidecar '{file.name}' needs unit folders (pattern nested or deep_nested); use '*{file.name}'-style per-file names"
        located = place(pattern, pseudo, stem)
        return (located.group_key, "") if located.group_key else (None, located.reason)
    return None


def _nfc_parts(file: SourceFile) -> tuple[str, ...]:
    """The path components that patterns and rules read: NFC, so both spellings of a name key one unit."""
    relative = file.relative_path
    return path_parts(relative) if relative.isascii() else tuple(nfc(p) for p in path_parts(relative))


def _ambiguity(key: str, spec_name: str, files: Sequence[SourceFile]) -> str:
    """Why a unit has several files for one spec, and the fix, as the unit's problem."""
    listed = ", ".join(f.relative_path for f in files)
    twins = [group for group in _by_nfc_path(files) if len(group) > 1]
    if twins:
        named = "; ".join(" and ".join(f"'{f.relative_path}' ({_form(f.relative_path)})" for f in g) for g in twins)
        rest = "" if sum(map(len, twins)) == len(files) else f" ({listed})"
        return (f"{len(files)} files for spec '{spec_name}'{rest}: {named} are the same name in two Unicode "
                "normalizations (NFC/NFD); keep one")
    if _in_several_folders(files):
        return (f"the same stem '{key}' in {_count(len({_folder(f) for f in files}))} folders of the source of spec "
                f"'{spec_name}' ({listed}); multi-path units join by stem at any depth, so rename one or use rules")
    return f"{len(files)} files for spec '{spec_name}' ({listed}); keep one or add a rule"


def _candidate_reason(file: SourceFile, files: Sequence[SourceFile], key: str, spec_name: str) -> str:
    """Why one of several candidates is left out, naming the files it competes with."""
    others = [f for f in files if f is not file]
    twins = [f for f in others if nfc(f.relative_path) == nfc(file.relative_path)]
    if twins:
        spelled = ", ".join(f"'{f.relative_path}' ({_form(f.relative_path)})" for f in twins)
        return (f"its name ({_form(file.relative_path)}) and {spelled} are the same name in two Unicode "
                f"normalizations (NFC/NFD); keep one (spec '{spec_name}', unit '{key}')")
    elsewhere = [f for f in others if _folder(f) != _folder(file)]
    if file.source_spec is not None and elsewhere:
        return (f"the same stem '{key}' as {_quoted(elsewhere)} in another folder of the source of spec '{spec_name}'; "
                "multi-path units join by stem at any depth, so rename one or use rules")
    return f"one of {len(files)} candidates for spec '{spec_name}' in unit '{key}'"


def _in_several_folders(files: Sequence[SourceFile]) -> bool:
    """Multi-path candidates from different folders of one source: the stem alone made them one unit."""
    return files[0].source_spec is not None and len({_folder(f) for f in files}) > 1


def _by_nfc_path(files: Sequence[SourceFile]) -> list[list[SourceFile]]:
    groups: dict[str, list[SourceFile]] = {}
    for f in files:
        groups.setdefault(nfc(f.relative_path), []).append(f)
    return list(groups.values())


def _form(text: str) -> str:
    """Which spelling a name uses: the only way to tell two names apart that look the same."""
    if unicodedata.is_normalized("NFC", text):
        return "NFC"
    return "NFD" if unicodedata.is_normalized("NFD", text) else "neither NFC nor NFD"


def _folder(file: SourceFile) -> tuple[str, ...]:
    return file.parts[:-1]


def _quoted(files: Sequence[SourceFile]) -> str:
    return ", ".join(f"'{f.relative_path}'" for f in files)


def _count(n: int) -> str:
    return {2: "two", 3: "three"}.get(n, str(n))


def _names(specs: Sequence[FileSpec]) -> str:
    return ", ".join(s.name for s in specs)

