"""The pipeline file ``init`` writes: one pipeline entry as commented YAML, alone or appended to a file.

A hand-edited file is the user's: extending it appends text after its last pipeline and keeps every comment and
line as it was, rather than re-dumping the parsed YAML (which would drop them). The result is parsed again and
must hold the old pipelines plus the new one, or nothing is written.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

SCHEMA_LINE = "# yaml-language-server: $schema={schema}"
_COMMENT_AT = 44  # the column comments start at, so a file reads as two columns


class PipelineFileError(ValueError):
    """The file to extend cannot take another pipeline as it is (the message says why and what to do)."""


@dataclass
class PipelineDraft:
    """The entry as nested plain data, and a comment per dotted field (``metadata.key_column``) saying why."""

    values: dict[str, Any]
    notes: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return str(self.values["name"])


def entry_lines(draft: PipelineDraft) -> list[str]:
    """``  - name: …`` and the rest, indented to sit in the ``pipelines:`` list."""
    lines: list[str] = []
    _emit(draft.values, draft.notes, "", 4, lines)
    lines[0] = "  - " + lines[0][4:]
    return lines


def _emit(values: Mapping[str, Any], notes: Mapping[str, str], prefix: str, indent: int, out: list[str]) -> None:
    for key, value in values.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.append(_with_note(f"{' ' * indent}{key}:", notes.get(path)))
            _emit(value, notes, f"{path}.", indent + 2, out)
        else:
            out.append(_with_note(f"{' ' * indent}{key}: {_scalar(value)}", notes.get(path)))


def _scalar(value: Any) -> str:
    """JSON is YAML: a string is double-quoted only when plain YAML would read it as something else."""
    if isinstance(value, str):
        plain = yaml.safe_dump(value, default_flow_style=True, width=10**6).strip().removesuffix("\n...").strip()
        return plain if yaml.safe_load(plain) == value and "#" not in plain else json.dumps(value)
    return json.dumps(value)


def _with_note(line: str, note: str | None) -> str:
    if not note:
        return line
    return f"{line.ljust(_COMMENT_AT - 1)} # {' '.join(note.split())}"


def new_file(draft: PipelineDraft, schema: str, *, today: dt.date | None = None) -> str:
    day = (today or dt.date.today()).isoformat()
    header = [SCHEMA_LINE.format(schema=schema),
              f"# Written by 'synapse-dagster init' on {day}. Relative paths start at this file's folder.",
              "# 'synapse-dagster check' validates it, 'synapse-dagster doctor' checks what a run needs;",
              "# the README's \"Pipeline file\" section describes every field.",
              "pipelines:"]
    return "\n".join([*header, *entry_lines(draft)]) + "\n"


def extended_file(existing: str, draft: PipelineDraft, schema: str) -> str:
    """``existing`` with the new entry after its last pipeline (``pipelines:`` must be the file's last key)."""
    try:
        before = yaml.safe_load(existing) or {}
    except yaml.YAMLError as exc:
        raise PipelineFileError(f"it is not valid YAML ({' '.join(str(exc).split())}); fix it or choose a new file")
    pipelines = before.get("pipelines") if isinstance(before, Mapping) else None
    if not isinstance(pipelines, list):
        raise PipelineFileError("it has no 'pipelines:' list to add to; choose a new file")
    if any(isinstance(p, Mapping) and p.get("name") == draft.name for p in pipelines):
        raise PipelineFileError(f"it already has a pipeline named '{draft.name}'; choose another name")
    head = existing if existing.endswith("\n") else existing + "\n"
    if not existing.lstrip().startswith("# yaml-language-server:"):
        head = SCHEMA_LINE.format(schema=schema) + "\n" + head
    text = head + f"  # added by 'synapse-dagster init' on {dt.date.today().isoformat()}\n" + \
        "\n".join(entry_lines(draft)) + "\n"
    try:
        after = yaml.safe_load(text)
    except yaml.YAMLError:
        after = None
    if not isinstance(after, Mapping) or after.get("pipelines", [])[:-1] != pipelines or \
            after["pipelines"][-1].get("name") != draft.name:
        raise PipelineFileError("its 'pipelines:' list is not the last thing in it, so a pipeline appended at the end "
                                "would not land in the list; move 'pipelines:' to the end or choose a new file")
    return text
