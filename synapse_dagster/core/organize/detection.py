"""Guessing a batch's directory pattern from a sample of its files, with the evidence shown.

Users rarely know the seed's pattern numbers; they know their folders. A sample (the first few
thousand listed files) is enough to tell flat from nested from type-separated, and the evidence is
reported so a wrong guess is easy to spot and override with ``pattern:``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import islice

from synapse_dagster.core.sources.files import SourceFile
from synapse_dagster.core.organize.layouts import PATTERN_NUMBERS, Pattern, SpecNames, nfc

SAMPLE_SIZE = 5000


@dataclass(frozen=True)
class Detection:
    pattern: Pattern
    evidence: list[str] = field(default_factory=list)
    sampled: int = 0
    detected: bool = True  # False when the pipeline file fixed the pattern

    def describe(self) -> str:
        number = PATTERN_NUMBERS.get(self.pattern)
        label = f"{self.pattern.value}" + (f" (pattern {number})" if number else "")
        how = "detected from a sample" if self.detected else "set in the pipeline file"
        return f"{label}, {how}"


def detect_pattern(files: Iterable[SourceFile], names: SpecNames, *, sample_size: int = SAMPLE_SIZE) -> Detection:
    sample = [f for f in islice((f for f in files if not f.set_aside), sample_size)]
    if not sample:
        return Detection(Pattern.NESTED, ["the batch holds no files; assuming nested (pattern 1)"], 0)
    total = len(sample)
    at_top = [f for f in sample if len(f.parts) == 1]
    if len(at_top) >= 0.8 * total:
        stems = Counter(nfc(names.specs.split_name(f.name)[0]) for f in at_top)
        shared = sum(1 for c in stems.values() if c > 1)
        return Detection(Pattern.FLAT, [
            f"{len(at_top)} of {total} sampled files sit directly in the batch folder",
            f"{shared} of {len(stems)} name stems are shared by several files (one unit per stem)",
        ], total)
    inside = [f for f in sample if len(f.parts) > 1]
    top_folders = Counter(f.parts[0] for f in inside)
    spec_named = sorted(d for d in top_folders if names.names_a_spec(d))
    if spec_named and len(spec_named) >= len(top_folders) / 2:
        return Detection(Pattern.TYPE_SEPARATED, [
            f"top-level folders {', '.join(spec_named[:6])} are named after file specifications",
            f"{sum(top_folders[d] for d in spec_named)} of {total} sampled files sit in them; units pair up by name stem",
        ], total)
    deep = [f for f in inside if len(f.parts) > 2]
    sub_folders = Counter(f.parts[1] for f in deep)
    units_with_sub = Counter()
    for name in {(f.parts[0], f.parts[1]) for f in deep}:
        units_with_sub[name[1]] += 1
    repeated = sorted(n for n, units in units_with_sub.items() if units > 1 or names.names_a_spec(n))
    if deep and len(deep) >= 0.5 * len(inside) and repeated:
        return Detection(Pattern.DEEP_NESTED, [
            f"{len(deep)} of {total} sampled files sit in sub-folders of {len(top_folders)} unit folders",
            f"sub-folder names {', '.join(repeated[:6])} repeat across unit folders and pick the spec",
        ], total)
    evidence = [f"{len(inside)} of {total} sampled files sit in {len(top_folders)} top-level folders, one unit each"]
    if at_top:
        evidence.append(f"{len(at_top)} files at the top of the batch belong to no unit")
    if sub_folders and not repeated:
        evidence.append("sub-folder names inside units do not repeat, so extensions pick the spec")
    return Detection(Pattern.NESTED, evidence, total)


def choose_pattern(fixed: Pattern | None, files: Iterable[SourceFile], names: SpecNames) -> Detection:
    """The pattern the pipeline file fixes, or the one detected from a sample of the batch."""
    if fixed is not None:
        return Detection(fixed, [f"pattern '{fixed.value}' is set in the pipeline file"], detected=False)
    return detect_pattern(files, names)
