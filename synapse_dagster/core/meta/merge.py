"""One unit's ``meta``: values from every metadata source, merged by a declared precedence, with provenance.

Sources: static values from the pipeline file, the unit's folder name, named groups of a path or
file-name regex, a row of the metadata sheet, and sidecar JSON/YAML files. When two sources give a
field different values the higher one wins and the disagreement is kept as a note, so a reviewer
sees it; every field remembers which source gave it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from synapse_dagster.core.meta.coercion import coerce_value, declared, normalize
from synapse_dagster.core.sources.files import SourceFile

DATASET_KEY_FIELD = "dataset_key"
SOURCE_KINDS = ("static", "directory", "path", "filename", "sheet", "sidecar")
DEFAULT_PRECEDENCE = SOURCE_KINDS  # lowest first: a sidecar beats the sheet, the sheet beats a file name


@dataclass(frozen=True)
class MetaRecipe:
    """The pipeline's metadata settings, as plain data."""

    static: Mapping[str, Any] = field(default_factory=dict)
    directory_field: str | None = None
    path_regex: str | None = None
    filename_regex: str | None = None
    precedence: tuple[str, ...] = DEFAULT_PRECEDENCE

    def __post_init__(self) -> None:
        for regex in (self.path_regex, self.filename_regex):
            if regex:
                re.compile(regex)
        missing = set(SOURCE_KINDS) - set(self.precedence)
        unknown = set(self.precedence) - set(SOURCE_KINDS)
        if missing or unknown or len(self.precedence) != len(SOURCE_KINDS):
            raise ValueError(f"precedence must list each of {list(SOURCE_KINDS)} once (lowest first)")


@dataclass
class UnitMeta:
    meta: dict[str, Any]
    provenance: dict[str, str]
    problems: list[str]
    notes: list[str]


@dataclass(frozen=True)
class SourceValues:
    kind: str  # one of SOURCE_KINDS
    label: str  # e.g. "sheet meta.xlsx", "sidecar P1/meta.yaml"
    values: Mapping[str, Any]


def regex_values(regex: str | None, texts: Sequence[str]) -> dict[str, Any]:
    """Named groups of the first text ``regex`` matches (searched, so it may match part of a name)."""
    if not regex:
        return {}
    compiled = re.compile(regex)
    for text in texts:
        match = compiled.search(text)
        if match:
            return {k: v for k, v in match.groupdict().items() if v is not None}
    return {}


def read_sidecar(name: str, data: bytes) -> dict[str, Any]:
    """Parse a sidecar's bytes: ``.json`` as JSON, anything else as YAML (a superset of JSON)."""
    text = data.decode("utf-8-sig")
    parsed = json.loads(text) if name.lower().endswith(".json") else yaml.safe_load(text)
    if not isinstance(parsed, dict):
        raise ValueError("must hold an object of field: value pairs")
    return {str(k): normalize(v) for k, v in parsed.items()}


def unit_sources(
    recipe: MetaRecipe,
    *,
    group_key: str,
    files: Sequence[SourceFile],
    sheet_row: Mapping[str, Any] | None = None,
    sheet_label: str | None = None,
    sidecars: Sequence[tuple[str, Mapping[str, Any]]] = (),
) -> list[SourceValues]:
    """Everything the sources say about one unit; ``files`` come primary spec first."""
    found = [SourceValues("static", "static", dict(recipe.static))]
    if recipe.directory_field:
        found.append(SourceValues("directory", "folder name", {recipe.directory_field: group_key.rsplit("/", 1)[-1]}))
    found.append(SourceValues("path", "path_regex", regex_values(recipe.path_regex, [f.relative_path for f in files])))
    found.append(SourceValues("filename", "filename_regex", regex_values(recipe.filename_regex, [f.name for f in files])))
    if sheet_row is not None:
        found.append(SourceValues("sheet", f"sheet {sheet_label}", dict(sheet_row)))
    for label, values in sidecars:
        found.append(SourceValues("sidecar", f"sidecar {label}", values))
    return [s for s in found if s.values]


def build_unit_meta(
    sources: Sequence[SourceValues],
    *,
    dataset_key: str,
    schema: Mapping[str, Any] | None,
    precedence: Sequence[str] = DEFAULT_PRECEDENCE,
) -> UnitMeta:
    """Merge by precedence (later kinds win), pin ``dataset_key``, then coerce each field to the schema."""
    rank = {kind: i for i, kind in enumerate(precedence)}
    meta: dict[str, Any] = {}
    provenance: dict[str, str] = {}
    problems: list[str] = []
    notes: list[str] = []
    for source in sorted(sources, key=lambda s: rank[s.kind]):  # stable: sidecars keep their order
        for name, value in source.values.items():
            value = normalize(value)
            if name == DATASET_KEY_FIELD:
                problems.append(f"{source.label} sets '{DATASET_KEY_FIELD}', which identifies the unit and is set by "
                                "the pipeline (dataset_key_template); rename that field")
                continue
            if name in meta and meta[name] != value:
                notes.append(f"field '{name}': {provenance[name]} says {meta[name]!r}, {source.label} says {value!r}; "
                             f"{source.label} wins")
            meta[name], provenance[name] = value, source.label
    meta[DATASET_KEY_FIELD], provenance[DATASET_KEY_FIELD] = dataset_key, "pipeline"
    for name in list(meta):
        types, fmt = declared(schema, name)
        try:
            meta[name] = coerce_value(meta[name], types, fmt)
        except ValueError as exc:
            problems.append(f"field '{name}' = {meta[name]!r} (from {provenance[name]}) {exc}")
    return UnitMeta(meta=meta, provenance=provenance, problems=problems, notes=notes)


def render_dataset_key(template: str, *, pipeline: str, batch: str, group_key: str) -> str:
    return template.format(pipeline=pipeline, batch=batch, group_key=group_key)
