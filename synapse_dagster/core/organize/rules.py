"""Explicit organization rules, as the seed's ``organize_files_by_pattern``.

``file_rules`` map glob patterns (``**`` crosses folders, ``*`` does not) to spec names, first match
wins; ``group_key_regex`` cuts the unit key out of the relative path. Globs are compiled once to
regexes so a million paths cost a million regex matches, nothing more.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

from synapse_dagster.core.organize.layouts import nfc


def glob_to_regex(pattern: str) -> re.Pattern[str]:
    """``**/`` matches any number of folders, ``*`` and ``?`` stay within one name, ``[...]`` is a class."""
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif c == "*":
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[":
            end = pattern.find("]", i + 1)
            if end == -1:
                out.append(re.escape(c))
                i += 1
            else:
                body = pattern[i + 1 : end]
                out.append("[^" + re.escape(body[1:]) + "]" if body.startswith("!") else "[" + re.escape(body) + "]")
                i = end + 1
        elif c == "{":
            end = pattern.find("}", i + 1)
            if end == -1:
                out.append(re.escape(c))
                i += 1
            else:
                out.append("(?:" + "|".join(re.escape(a) for a in pattern[i + 1 : end].split(",")) + ")")
                i = end + 1
        else:
            out.append(re.escape(c))
            i += 1
    return re.compile("".join(out) + r"\Z", re.IGNORECASE)


@dataclass(frozen=True)
class FileRule:
    pattern: str
    spec: str

    @cached_property
    def regex(self) -> re.Pattern[str]:
        return glob_to_regex(nfc(self.pattern))


@dataclass(frozen=True)
class RuleSet:
    file_rules: tuple[FileRule, ...]
    group_key_regex: str | None = None

    @cached_property
    def _key_regex(self) -> re.Pattern[str] | None:
        return re.compile(nfc(self.group_key_regex)) if self.group_key_regex else None

    def spec_for(self, relative_path: str) -> FileRule | None:
        return next((r for r in self.file_rules if r.regex.match(relative_path)), None)

    def group_key(self, relative_path: str, stem_key: str) -> str | None:
        """The ``group_key`` named group, else group 1, else the whole match; without a regex: the stem key.

        Paths come NFC-normalized (see :func:`nfc`), and so are the patterns, so either spelling matches.
        """
        if self._key_regex is None:
            return stem_key
        match = self._key_regex.search(relative_path)
        if match is None:
            return None
        if "group_key" in self._key_regex.groupindex:
            return match.group("group_key")
        return match.group(1) if self._key_regex.groups else match.group(0)
