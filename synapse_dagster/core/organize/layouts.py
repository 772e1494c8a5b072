"""The seed's directory patterns: where a file's unit key and its spec hints come from.

Each pattern answers two questions about a path relative to the batch root: which unit does the
file belong to (its group key), and which folder names may say which file specification it is.
Spec names in folder or file names win over extensions, so ``img/scan.png`` and ``mask/scan.png``
can map to two specs that both accept ``.png``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import NamedTuple

from synapse_dagster.core.organize.specs import CollectionSpecs, FileSpec


def nfc(text: str) -> str:
    """One spelling per name: macOS writes 'café' decomposed (NFD), Linux and Windows composed (NFC)."""
    return text if text.isascii() else unicodedata.normalize("NFC", text)


class Pattern(StrEnum):
    AUTO = "auto"  # detect from a sample of the batch
    NESTED = "nested"  # 1: each top-level folder is a unit; extension picks the spec
    TYPE_SEPARATED = "type_separated"  # 2: top-level folders per spec (images/, labels/), units by stem
    FLAT = "flat"  # 3: files side by side, units by stem
    DEEP_NESTED = "deep_nested"  # 4: top-level folder is a unit, its sub-folder names pick the spec
    MULTI_PATH = "multi_path"  # 5: one source per spec, units by stem across sources, at any depth
    RULES = "rules"  # explicit file_rules + group_key_regex


PATTERN_NUMBERS = {
    Pattern.NESTED: 1,
    Pattern.TYPE_SEPARATED: 2,
    Pattern.FLAT: 3,
    Pattern.DEEP_NESTED: 4,
    Pattern.MULTI_PATH: 5,
}


class UnitPlace(NamedTuple):
    """Where a file sits in its pattern: its unit key, and the names that may name its spec (one per file of a
    batch, so a tuple)."""

    group_key: str | None
    name_hints: tuple[str, ...] = ()
    reason: str = ""  # why there is no group key


_TRAILING_INDEX = re.compile(r"_\d+$")


class SpecNames:
    """Which spec a folder or file name means: the spec name, it without ``_1``, its plural, and aliases."""

    def __init__(self, specs: CollectionSpecs, aliases: Mapping[str, Sequence[str]] | None = None) -> None:
        self.specs = specs
        self._names: dict[str, set[str]] = {}
        for spec in specs.specs:
            base = _TRAILING_INDEX.sub("", spec.name)
            names = {spec.name, base, f"{base}s"} | {a for a in (aliases or {}).get(spec.name, ())}
            self._names[spec.name] = {nfc(n).lower() for n in names if n}

    def named(self, hints: Sequence[str]) -> list[FileSpec]:
        lowered = {nfc(h).lower() for h in hints}
        return [s for s in self.specs.specs if self._names[s.name] & lowered]

    def names_a_spec(self, name: str) -> bool:
        return bool(self.named([name]))


def place(pattern: Pattern, parts: tuple[str, ...], stem: str) -> UnitPlace:
    """The unit of a file at ``parts`` (relative path components, NFC) with name stem ``stem``."""
    folders = parts[:-1]
    if pattern in (Pattern.NESTED, Pattern.DEEP_NESTED):
        if not folders:
            return UnitPlace(None, reason="file sits at the top of the batch, not inside a unit folder; move it into a "
                             "folder or choose pattern flat")
        hints = folders[1:] if pattern is Pattern.DEEP_NESTED else (*folders[1:], stem)
        return UnitPlace(folders[0], hints)
    if pattern is Pattern.TYPE_SEPARATED:
        if not folders:
            return UnitPlace(None, reason="file sits at the top of the batch, not inside a type folder such as images/")
        return UnitPlace("/".join((*folders[1:], stem)), (folders[0],))
    if pattern is Pattern.FLAT:
        # Stems only join within one folder: 'a/x.png' and 'b/x.json' are different units.
        return UnitPlace("/".join((*folders, stem)), ())
    if pattern is Pattern.MULTI_PATH:
        # Each spec has its own source, laid out its own way: 'images/2026/x.png' pairs with 'labels/x.json'.
        return UnitPlace(stem, ())
    raise ValueError(f"pattern {pattern} places files by rules, not by layout")
