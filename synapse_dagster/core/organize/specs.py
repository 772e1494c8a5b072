"""A data collection's file specifications and meta schema, as plain data.

The backend returns loosely shaped dicts; everything downstream wants a small immutable view that
answers "which spec takes a file with this extension?" without re-parsing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from synapse_dagster.core.memo import BoundedMemo


_COMPUTED = frozenset({"_split_memo", "_multi_part_extensions", "_by_extension"})


class CollectionShapeError(ValueError):
    """A data collection that cannot be ingested into as it is set up in Synapse (fixed there, not here)."""


class OrganizationError(ValueError):
    """Rules, aliases or sources that name specs the collection does not have."""


def normalize_extension(ext: str) -> str:
    """``'PNG'``, ``'.png'`` and ``'png'`` all mean ``'.png'`` (the SDK matches case-insensitively)."""
    ext = ext.strip().lower()
    return ext if ext.startswith(".") else f".{ext}"


@dataclass(frozen=True)
class FileSpec:
    name: str
    extensions: tuple[str, ...]
    is_required: bool
    file_type: str = ""
    is_primary: bool = False

    def accepts(self, extension: str) -> bool:
        # A spec without extensions accepts nothing by extension; mapping it needs explicit rules.
        return normalize_extension(extension) in self.extensions

    def describe(self) -> str:
        return f"{self.name} ({' '.join(self.extensions) or 'no extensions'})"


@dataclass(frozen=True)
class CollectionSpecs:
    collection_id: int
    name: str
    specs: tuple[FileSpec, ...]
    meta_schema: Mapping[str, Any] | None = None
    _by_name: Mapping[str, FileSpec] = field(default_factory=dict, repr=False, compare=False)
    _required: tuple[FileSpec, ...] = field(default=(), repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {spec.name: spec for spec in self.specs})
        object.__setattr__(self, "_required", tuple(s for s in self.specs if s.is_required))  # asked once per unit

    @classmethod
    def from_api(cls, collection: Mapping[str, Any]) -> CollectionSpecs:
        """Build from ``BackendClient.get_data_collection`` output, rejecting shapes we cannot upload to."""
        raw_specs = collection.get("file_specifications") or []
        if not isinstance(raw_specs, list) or not raw_specs:
            raise CollectionShapeError(
                f"data collection {collection.get('id')} has no file specifications; "
                "add at least one in Synapse before ingesting"
            )
        specs = []
        for raw in raw_specs:
            name = raw.get("name")
            if not name:
                raise CollectionShapeError(f"data collection {collection.get('id')} has a file specification without a "
                                           "name; name it in Synapse")
            specs.append(
                FileSpec(
                    name=name,
                    extensions=tuple(dict.fromkeys(normalize_extension(e) for e in raw.get("extensions") or [])),
                    is_required=bool(raw.get("is_required", False)),
                    file_type=str(raw.get("file_type") or ""),
                    is_primary=bool(raw.get("is_primary", False)),
                )
            )
        meta = collection.get("meta") or {}
        schema = meta.get("data_unit_meta_schema") if isinstance(meta, Mapping) else None
        return cls(
            collection_id=int(collection["id"]),
            name=str(collection.get("name") or f"collection {collection['id']}"),
            specs=tuple(specs),
            meta_schema=schema or None,
        )

    def spec(self, name: str) -> FileSpec | None:
        return self._by_name.get(name)

    def check_source_specs(self, spec_names: Iterable[str], owner: str) -> None:
        """Multi-path mode: every source names a spec of this collection, and every required spec has a source."""
        names = set(spec_names)
        unknown = sorted(names - set(self._by_name))
        if unknown:
            raise OrganizationError(
                f"{owner}: assets name spec(s) {unknown} that data collection {self.collection_id} "
                f"does not define (it has {[s.name for s in self.specs]})"
            )
        missing = [s.name for s in self.required if s.name not in names]
        if missing:
            raise OrganizationError(f"{owner}: required spec(s) {missing} have no source under 'assets'")

    @property
    def required(self) -> tuple[FileSpec, ...]:
        cached = self.__dict__.get("_required")  # absent from specs pickled by an older version
        return cached if cached is not None else tuple(s for s in self.specs if s.is_required)

    def specs_for_extension(self, extension: str) -> list[FileSpec]:
        found = self._by_extension.get(extension)
        return list(found) if found is not None else [s for s in self.specs if s.accepts(extension)]

    def split_name(self, name: str) -> tuple[str, str]:
        """``(stem, extension)`` using the longest extension a spec declares, so ``a.nii.gz`` pairs with ``a.json``.
        Asked once per file; names that repeat from unit to unit are answered from a bounded memo."""
        return self._split_memo(name)

    def _split(self, name: str) -> tuple[str, str]:
        lowered = name.lower()
        for ext in self._multi_part_extensions:
            if lowered.endswith(ext) and len(name) > len(ext):
                return name[: -len(ext)], ext
        dot = name.rfind(".")
        if dot <= 0:
            return name, ""
        return name[:dot], name[dot:].lower()

    # Asked once per file of a batch, so computed once (cached_property: specs pickled by an older version too).
    @cached_property
    def _split_memo(self) -> BoundedMemo[str, tuple[str, str]]:
        return BoundedMemo(self._split)

    @cached_property
    def _multi_part_extensions(self) -> list[str]:
        found = {e for s in self.specs for e in s.extensions if e.count(".") > 1}
        return sorted(found, key=len, reverse=True)

    @cached_property
    def _by_extension(self) -> dict[str, tuple[FileSpec, ...]]:
        """The specs each declared (normalized) extension fits; other spellings are asked of each spec."""
        return {e: tuple(s for s in self.specs if e in s.extensions) for spec in self.specs for e in spec.extensions}

    def __getstate__(self) -> dict[str, Any]:
        """Pickled (between steps) without what is computed from the fields."""
        return {k: v for k, v in self.__dict__.items() if k not in _COMPUTED}

    def to_dict(self) -> dict[str, Any]:
        return {
            "collection_id": self.collection_id,
            "name": self.name,
            "specs": [
                {
                    "name": s.name,
                    "extensions": list(s.extensions),
                    "is_required": s.is_required,
                    "file_type": s.file_type,
                    "is_primary": s.is_primary,
                }
                for s in self.specs
            ],
            "meta_schema": self.meta_schema,
        }
