"""One unit's ``meta``: the values of every metadata source (:mod:`.sources`) merged by a declared precedence,
with provenance.

When two sources give a field different values the higher one wins and the disagreement is kept as a note, so
a reviewer sees it; every field remembers which source gave it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from synapse_dagster.core.meta.coercion import FieldTypes, coerce_value, normalize
from synapse_dagster.core.meta.sources import DEFAULT_PRECEDENCE, SourceValues

DATASET_KEY_FIELD = "dataset_key"


@dataclass(slots=True)
class UnitMeta:
    meta: dict[str, Any]
    provenance: dict[str, str]
    problems: list[str]
    notes: list[str]


def build_unit_meta(
    sources: Sequence[SourceValues],
    *,
    dataset_key: str,
    schema: Mapping[str, Any] | None,
    precedence: Sequence[str] = DEFAULT_PRECEDENCE,
    types: FieldTypes | None = None,
) -> UnitMeta:
    """Merge by precedence (later kinds win), pin ``dataset_key``, then coerce each field to the schema.
    ``types`` is the schema's :class:`FieldTypes`, shared by a batch's units."""
    types = types or FieldTypes(schema)
    meta: dict[str, Any] = {}
    provenance: dict[str, str] = {}
    problems: list[str] = []
    notes: list[str] = []
    if len(sources) > 1:
        rank = {kind: i for i, kind in enumerate(precedence)}
        sources = sorted(sources, key=lambda s: rank[s.kind])  # stable: sidecars keep their order
    for source in sources:
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
        declared_types, fmt = types(name)
        try:
            meta[name] = coerce_value(meta[name], declared_types, fmt)
        except ValueError as exc:
            problems.append(f"field '{name}' = {meta[name]!r} (from {provenance[name]}) {exc}")
    return UnitMeta(meta=meta, provenance=provenance, problems=problems, notes=notes)


def render_dataset_key(template: str, *, pipeline: str, batch: str, group_key: str) -> str:
    return template.format(pipeline=pipeline, batch=batch, group_key=group_key)
