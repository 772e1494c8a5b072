"""Reading the pipeline file: YAML in, validated models out, and one readable message for every mistake.

The message names the file, the pipeline (by name, or by position when it has none) and the dotted field path,
so it can be fixed without reading a traceback. :func:`json_schema` exports the same rules for editors.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from synapse_dagster.config.models import PipelineFile

PIPELINES_ENV = "SYNAPSE_DAGSTER_PIPELINES"
DEFAULT_PIPELINE_FILE = "pipelines.yaml"


class PipelineConfigError(ValueError):
    """A pipeline file that cannot be used; the message names the file, pipeline and field."""


def _describe_error(data: Any, error: dict[str, Any]) -> str:
    loc = list(error["loc"])
    where = ""
    if len(loc) >= 2 and loc[0] == "pipelines" and isinstance(loc[1], int):
        index = loc[1]
        name = None
        try:
            name = data["pipelines"][index].get("name")
        except (KeyError, IndexError, TypeError, AttributeError):
            pass
        where = f"pipeline '{name}'" if name else f"pipeline #{index + 1}"
        loc = loc[2:]
    field = ".".join(str(part) for part in loc if not str(part).startswith("function-after"))
    message = error["msg"]
    if error["type"] == "extra_forbidden":
        message = "unknown field (check the spelling; see README 'Pipeline file')"
    parts = [p for p in (where, f"field '{field}'" if field else "") if p]
    return f"{', '.join(parts)}: {message}" if parts else message


def parse_pipeline_file(data: Any, *, origin: str = "<pipeline file>") -> PipelineFile:
    if not isinstance(data, dict) or "pipelines" not in data:
        raise PipelineConfigError(f"{origin}: expected a mapping with a top-level 'pipelines:' list")
    try:
        return PipelineFile.model_validate(data)
    except ValidationError as exc:
        lines = [_describe_error(data, err) for err in exc.errors()]
        raise PipelineConfigError(f"{origin} is invalid:\n  - " + "\n  - ".join(lines)) from None


def pipeline_file_path(path: str | os.PathLike[str] | None = None) -> Path:
    chosen = path or os.environ.get(PIPELINES_ENV) or DEFAULT_PIPELINE_FILE
    return Path(chosen).expanduser().resolve()


def load_pipeline_file(path: str | os.PathLike[str] | None = None) -> tuple[PipelineFile, Path]:
    """Read and validate the pipeline file; returns it with its absolute path (relative sources resolve there)."""
    file_path = pipeline_file_path(path)
    if not file_path.is_file():
        raise PipelineConfigError(
            f"pipeline file {file_path} does not exist; set {PIPELINES_ENV} to your pipeline file "
            f"or create {DEFAULT_PIPELINE_FILE} in the working directory"
        )
    try:
        data = yaml.safe_load(file_path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise PipelineConfigError(f"{file_path} is not valid YAML: {exc}") from None
    return parse_pipeline_file(data, origin=str(file_path)), file_path


def json_schema() -> str:
    """The pipeline file's JSON Schema, for editors (``# yaml-language-server: $schema=...``)."""
    schema = PipelineFile.model_json_schema()
    schema["title"] = "synapse-dagster pipeline file"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"
