"""The data collections a user can pick from, and what each one asks of a data unit.

A new user knows their data, not the collection's IDs: they choose from a list that says what each collection
wants (its file specifications, the meta fields its schema requires) before any file is looked at.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from synapse_dagster.core.organize.specs import CollectionShapeError, CollectionSpecs


@dataclass(frozen=True)
class CollectionChoice:
    id: int
    name: str
    specs: CollectionSpecs | None  # None when the collection cannot be ingested into as it is
    problem: str | None = None

    @property
    def title(self) -> str:
        if self.specs is None:
            return f"{self.id}: {self.name} (cannot be used: {self.problem})"
        listed = ", ".join(s.name + ("*" if s.is_required else "") for s in self.specs.specs)
        return f"{self.id}: {self.name} — {listed}"


@dataclass(frozen=True)
class CollectionListing:
    choices: list[CollectionChoice]
    count: int  # what Synapse says it holds; more than listed when the first page is not all

    @property
    def partial(self) -> bool:
        return self.count > len(self.choices)


def choice_of(raw: Mapping[str, Any]) -> CollectionChoice:
    """A list item or a ``get_data_collection`` answer; a collection without usable specs is listed, not hidden."""
    ident, name = int(raw["id"]), str(raw.get("name") or f"collection {raw['id']}")
    try:
        return CollectionChoice(ident, name, CollectionSpecs.from_api(raw))
    except CollectionShapeError as exc:
        return CollectionChoice(ident, name, None, str(exc).split(";")[0].removeprefix(f"data collection {ident} "))


def list_collections(client: Any) -> CollectionListing:
    """The first page ``list_data_collections`` gives (the SDK pages no further); items without their file
    specifications are fetched one by one, since the list may not expand them."""
    answer = client.list_data_collections()
    items = answer.get("results", []) if isinstance(answer, Mapping) else list(answer or [])
    count = int(answer.get("count", len(items))) if isinstance(answer, Mapping) else len(items)
    choices = []
    for item in items:
        if not isinstance(item, Mapping) or "id" not in item:
            continue
        if "file_specifications" not in item:
            item = client.get_data_collection(int(item["id"]))
        choices.append(choice_of(item))
    return CollectionListing(choices, count)


def describe_collection(specs: CollectionSpecs) -> list[str]:
    """What a unit of this collection must bring, one line each: its files, then its meta fields."""
    lines = [f"data collection {specs.collection_id} '{specs.name}'", "  file specifications (one file each per unit):"]
    for s in specs.specs:
        flags = [f for f, on in (("required", s.is_required), ("primary", s.is_primary)) if on]
        lines.append(f"    {s.describe()}" + (f" — {', '.join(flags)}" if flags else " — optional"))
    fields = meta_fields(specs.meta_schema)
    if not fields:
        lines.append("  meta: no data_unit_meta_schema, any meta is accepted")
        return lines
    lines.append("  meta fields (data_unit_meta_schema):")
    for name, kind, required in fields:
        lines.append(f"    {name} ({kind})" + (" — required" if required else ""))
    return lines


def meta_fields(schema: Mapping[str, Any] | None) -> list[tuple[str, str, bool]]:
    """``(name, type, required)`` of the schema's top-level properties, required first."""
    if not isinstance(schema, Mapping):
        return []
    listed = schema.get("required")
    required = [r for r in listed if isinstance(r, str)] if isinstance(listed, list) else []
    properties = schema.get("properties") if isinstance(schema.get("properties"), Mapping) else {}
    names = list(dict.fromkeys([*required, *properties]))
    return [(n, _kind(properties.get(n)), n in required) for n in names]


def required_meta_fields(specs: CollectionSpecs) -> list[str]:
    return [name for name, _, required in meta_fields(specs.meta_schema) if required]


def _kind(prop: Any) -> str:
    if not isinstance(prop, Mapping):
        return "any"
    kind = prop.get("type", "any")
    kind = "|".join(kind) if isinstance(kind, list) else str(kind)
    extra = prop.get("format") or ("one of " + ", ".join(map(str, prop["enum"])) if "enum" in prop else None)
    return f"{kind}, {extra}" if extra else kind


def default_storage(client: Any) -> Mapping[str, Any] | None:
    """The tenant's default internal storage (the SDK's own pick), or ``None`` when it has none."""
    try:
        found = client.get_default_storage()
    except ValueError:  # 'No default storage configured for tenant'
        return None
    return found if isinstance(found, Mapping) else getattr(found, "model_dump", lambda: None)()
