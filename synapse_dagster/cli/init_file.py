"""Writing what init drafted: a new commented pipeline file, or the entry appended to an existing one.

The text is loaded back with the code location's own loader before it replaces anything, so init never leaves a
file that ``dagster dev`` would refuse; the JSON Schema is written beside it when missing, for editors.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from synapse_dagster.cli.prompts import InitError
from synapse_dagster.config.loading import PipelineConfigError, json_schema, load_pipeline_file
from synapse_dagster.core.setup.pipeline_text import PipelineDraft, PipelineFileError, extended_file, new_file
from synapse_dagster.core.setup.preview import Preview

if TYPE_CHECKING:
    from synapse_dagster.cli.init import Session

SCHEMA_FILE = "pipelines.schema.json"
PROGRAM_ENV = "SYNAPSE_DAGSTER_PROGRAM"  # how the user calls the CLI, for the next steps init prints
_ORDER = ("name", "data_collection", "storage", "project", "source", "batches", "pattern", "metadata")


def write_pipeline(session: Session, shown: Preview) -> Path:
    path, draft = session.file, PipelineDraft(_ordered(session.values), dict(session.notes))
    schema = f"./{SCHEMA_FILE}"
    if path.exists():
        count = len(names_in(path))
        if not session.ui.confirm(f"{path.name} exists with {count} pipeline(s): add '{draft.name}' to it?"):
            raise InitError("nothing written; give another file with --pipelines")
        try:
            text = extended_file(path.read_text(encoding="utf-8"), draft, schema)
        except PipelineFileError as exc:
            raise InitError(f"{path} cannot take pipeline '{draft.name}': {exc}") from None
    else:
        text = new_file(draft, schema)
    _replace_checked(path, text)
    if not (path.parent / SCHEMA_FILE).exists():
        (path.parent / SCHEMA_FILE).write_text(json_schema(), encoding="utf-8")
    _next_steps(session, path, draft.name, shown)
    return path


def _ordered(values: dict) -> dict:
    known = {k: values[k] for k in _ORDER if k in values}
    return {**known, **{k: v for k, v in values.items() if k not in known}}


def names_in(file: Path) -> set[str]:
    """The pipeline names an existing file already uses (none when it is missing or unreadable)."""
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8")) if file.is_file() else None
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return set()
    pipelines = data.get("pipelines") if isinstance(data, dict) else None
    return {str(p.get("name")) for p in pipelines or [] if isinstance(p, dict)}


def _replace_checked(path: Path, text: str) -> None:
    """Write beside the target, load it as the code location would, then move it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_name(f".{path.name}.init-draft")
    draft.write_text(text, encoding="utf-8")
    try:
        load_pipeline_file(draft)
    except PipelineConfigError as exc:
        draft.unlink()
        raise InitError(f"the written file would not load, so {path} is unchanged: {' '.join(str(exc).split())}") \
            from None
    os.replace(draft, path)


def _next_steps(session: Session, path: Path, name: str, shown: Preview) -> None:
    """The commands to run next, as this user would type them (``scripts/cli`` sets the program's name)."""
    program = os.environ.get(PROGRAM_ENV, "synapse-dagster")
    try:
        shown_path = path.relative_to(Path.cwd())
    except ValueError:
        shown_path = path
    where = "" if shown_path == Path("pipelines.yaml") else f" --pipelines {shown_path}"
    batch = shown.batch if session.values["batches"]["mode"] == "folders" else "<a label>"
    session.say(f"Wrote pipeline '{name}' to {path}.")
    session.say("Next: check what a run needs, look at the whole batch's plan (nothing is sent), then ingest it:")
    session.say(f"  {program} doctor{where}")
    session.say(f"  {program} plan{where} --pipeline {name} --batch {batch}")
    session.say(f"  {program} ingest{where} --pipeline {name} --batch {batch}")
