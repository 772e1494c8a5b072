"""Where a unit's ``meta`` values come from: a registry of metadata sources, each a small function.

A source looks at one unit (its group key, its files, its sheet row, its sidecars) and says which fields it
knows. The registration order is the default precedence, lowest first: a sidecar beats the sheet, the sheet
beats a file name. A new source is one decorated function here (plus its settings in :class:`MetaRecipe`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from synapse_dagster.core.sources.files import SourceFile


@dataclass(frozen=True, slots=True)
class SourceValues:
    kind: str  # a registered source kind
    label: str  # e.g. "sheet meta.xlsx", "sidecar P1/meta.yaml"
    values: Mapping[str, Any]


@dataclass(slots=True)
class UnitFacts:
    """What the metadata sources may look at for one unit."""

    group_key: str
    files: Sequence[SourceFile]  # primary spec first
    sheet_row: Mapping[str, Any] | None = None
    sheet_label: str | None = None
    sidecars: Sequence[tuple[str, Mapping[str, Any]]] = ()  # (relative path, parsed values)


MetaSource = Callable[["MetaRecipe", UnitFacts], Iterable[SourceValues]]
META_SOURCES: dict[str, MetaSource] = {}
_USED_WHEN: dict[str, Callable[["MetaRecipe"], bool]] = {}  # a source that says nothing unless its setting is set


def meta_source(kind: str, used_when: Callable[[MetaRecipe], bool] | None = None) -> Callable[[MetaSource], MetaSource]:
    def register(fn: MetaSource) -> MetaSource:
        META_SOURCES[kind] = fn
        if used_when is not None:
            _USED_WHEN[kind] = used_when
        return fn

    return register


@meta_source("static", used_when=lambda recipe: bool(recipe.static))
def _static(recipe: MetaRecipe, unit: UnitFacts) -> Iterable[SourceValues]:
    if recipe.static:
        yield SourceValues("static", "static", dict(recipe.static))


@meta_source("directory", used_when=lambda recipe: bool(recipe.directory_field))
def _directory(recipe: MetaRecipe, unit: UnitFacts) -> Iterable[SourceValues]:
    if recipe.directory_field:
        yield SourceValues("directory", "folder name", {recipe.directory_field: unit.group_key.rsplit("/", 1)[-1]})


@meta_source("path", used_when=lambda recipe: bool(recipe.path_regex))
def _path(recipe: MetaRecipe, unit: UnitFacts) -> Iterable[SourceValues]:
    if recipe.path_regex:
        yield SourceValues("path", "path_regex", regex_values(recipe.path_regex, [f.relative_path for f in unit.files]))


@meta_source("filename", used_when=lambda recipe: bool(recipe.filename_regex))
def _filename(recipe: MetaRecipe, unit: UnitFacts) -> Iterable[SourceValues]:
    if recipe.filename_regex:
        yield SourceValues("filename", "filename_regex", regex_values(recipe.filename_regex, [f.name for f in unit.files]))


@meta_source("sheet")
def _sheet(recipe: MetaRecipe, unit: UnitFacts) -> Iterable[SourceValues]:
    if unit.sheet_row is not None:
        yield SourceValues("sheet", f"sheet {unit.sheet_label}", dict(unit.sheet_row))


@meta_source("sidecar")
def _sidecars(recipe: MetaRecipe, unit: UnitFacts) -> Iterable[SourceValues]:
    for label, values in unit.sidecars:
        yield SourceValues("sidecar", f"sidecar {label}", values)


SOURCE_KINDS = tuple(META_SOURCES)
DEFAULT_PRECEDENCE = SOURCE_KINDS


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
        if sorted(self.precedence) != sorted(SOURCE_KINDS):
            raise ValueError(f"precedence must list each of {list(SOURCE_KINDS)} once (lowest first)")


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


def used_sources(recipe: MetaRecipe) -> tuple[MetaSource, ...]:
    """The sources that may say something under ``recipe``: asked once per batch, not once per unit."""
    return tuple(META_SOURCES[kind] for kind in SOURCE_KINDS if kind not in _USED_WHEN or _USED_WHEN[kind](recipe))


def unit_sources(recipe: MetaRecipe, unit: UnitFacts, sources: Sequence[MetaSource] | None = None) -> list[SourceValues]:
    """Everything the registered sources (or ``sources``, from :func:`used_sources`) say about one unit (empty
    answers left out)."""
    return [found for source in (sources or used_sources(recipe)) for found in source(recipe, unit) if found.values]
