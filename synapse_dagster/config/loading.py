"""Reading the pipeline file: YAML in, validated models out, and one readable message for every mistake.

The message names the file and line, the pipeline (by name, or by position when it has none) and the dotted field
path, so it can be fixed without reading a traceback: ``pipelines.yaml:12: pipeline 'demo', field 'storage': ...``.
Lines come from PyYAML's composed node tree, which keeps where every key and value starts. :func:`json_schema`
exports the same rules for editors.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from synapse_dagster.config.models import PipelineFile

PIPELINES_ENV = "SYNAPSE_DAGSTER_PIPELINES"
DEFAULT_PIPELINE_FILE = "pipelines.yaml"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_YAML_FIX = "fix the YAML syntax there (usually the indentation, a missing ': ' or an unclosed bracket or quote)"
_TAG_FIX = "write a plain value there (quote it if it starts with '!')"


class PipelineConfigError(ValueError):
    """A pipeline file that cannot be used; the message names the file, line, pipeline and field."""


def _describe(data: Any, loc: Sequence[Any], message: str) -> str:
    """``pipeline 'x', field 'a.b': message``, from a location path into the file's data."""
    loc = list(loc)
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
    parts = [p for p in (where, f"field '{field}'" if field else "") if p]
    return f"{', '.join(parts)}: {message}" if parts else message


def _message(error: dict[str, Any]) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown field (check the spelling; see README 'Pipeline file')"
    return error["msg"]


def _child(node: yaml.Node, part: Any) -> tuple[yaml.Node | None, yaml.Node] | None:
    """The (key node, value node) one step down from ``node``, or ``None`` when the file has no such step."""
    if isinstance(node, yaml.MappingNode):
        found = [(k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == str(part)]
        return found[-1] if found else None
    if isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
        return None, node.value[part]
    return None


def _error_line(root: yaml.Node, error: dict[str, Any]) -> int:
    """The 1-based line an error points at: an unknown field's key, a wrong value, or the mapping lacking a field.

    The walk stops at the first step the file does not have (a missing field, or a step of pydantic's own such
    as a validator's name), so it ends on the deepest node the file does have.
    """
    node, key, complete = root, None, True
    for part in error["loc"]:
        step = _child(node, part)
        if step is None:
            complete = False
            break
        key, node = step
    if error["type"] == "extra_forbidden" and complete and key is not None:
        node = key
    return node.start_mark.line + 1


def _compose(text: str, origin: str) -> yaml.Node | None:
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise PipelineConfigError(_yaml_error(exc, origin)) from None


def _yaml_error(exc: yaml.YAMLError, origin: str) -> str:
    """``file:line:column: not valid YAML: problem (context); fix ...`` in one line."""
    mark = getattr(exc, "problem_mark", None)
    if not isinstance(exc, yaml.MarkedYAMLError) or mark is None:
        return f"{origin}: not valid YAML: {' '.join(str(exc).split())}; {_YAML_FIX}"
    problem = exc.problem or "cannot be read"
    context, cmark = exc.context, exc.context_mark
    if context and cmark is not None and (cmark.line, cmark.column) != (mark.line, mark.column):
        problem += f" ({context} from line {cmark.line + 1}, column {cmark.column + 1})"
    elif context:
        problem += f" ({context})"
    fix = _TAG_FIX if isinstance(exc, yaml.constructor.ConstructorError) else _YAML_FIX
    return f"{origin}:{mark.line + 1}:{mark.column + 1}: not valid YAML: {problem}; {fix}"


def _repeated_keys(node: yaml.Node, loc: tuple[Any, ...] = (), seen: set[int] | None = None):
    """Yield (location path, first key node, repeated key node) for every key given twice in one mapping."""
    seen = set() if seen is None else seen
    if id(node) in seen:  # an alias points back at a node already walked
        return
    seen.add(id(node))
    if isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            yield from _repeated_keys(item, (*loc, index), seen)
    elif isinstance(node, yaml.MappingNode):
        first: dict[tuple[str, str], yaml.Node] = {}
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.tag != _MERGE_TAG:
                if (key.tag, key.value) in first:
                    yield (*loc, key.value), first[(key.tag, key.value)], key
                first.setdefault((key.tag, key.value), key)
                yield from _repeated_keys(value, (*loc, key.value), seen)


def _reject_repeated_keys(root: yaml.Node | None, data: Any, origin: str) -> None:
    """PyYAML keeps the last of two equal keys without a word, so the first value would be lost unseen."""
    if root is None:
        return
    lines = [
        f"{origin}:{again.start_mark.line + 1}: " + _describe(
            data, loc, f"given twice in one mapping (lines {first.start_mark.line + 1} and "
            f"{again.start_mark.line + 1}); YAML would silently keep only the last, so remove one")
        for loc, first, again in _repeated_keys(root)
    ]
    if lines:
        raise PipelineConfigError("\n".join(lines))


def parse_pipeline_file(data: Any, *, origin: str = "<pipeline file>", text: str | None = None) -> PipelineFile:
    """Validate the file's data; with its ``text``, every error starts with ``origin:line:``."""
    if not isinstance(data, dict) or "pipelines" not in data:
        raise PipelineConfigError(f"{origin}: expected a mapping with a top-level 'pipelines:' list")
    try:
        return PipelineFile.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
    root = _compose(text, origin) if text is not None else None
    if root is None:
        lines = [_describe(data, err["loc"], _message(err)) for err in errors]
        raise PipelineConfigError(f"{origin} is invalid:\n  - " + "\n  - ".join(lines))
    located = sorted((_error_line(root, err), _describe(data, err["loc"], _message(err))) for err in errors)
    raise PipelineConfigError("\n".join(f"{origin}:{line}: {described}" for line, described in located))


def pipeline_file_path(path: str | os.PathLike[str] | None = None) -> Path:
    chosen = path or os.environ.get(PIPELINES_ENV) or DEFAULT_PIPELINE_FILE
    return Path(chosen).expanduser().resolve()


def _read_text(path: Path) -> str:
    """The file's text; a file saved in another encoding (Latin-1 from an old editor, say) is named with its line."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        line = exc.object[: exc.start].count(b"\n") + 1
        raise PipelineConfigError(f"{path}:{line}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x}); save the file "
                                  "as UTF-8") from None


def load_pipeline_file(path: str | os.PathLike[str] | None = None) -> tuple[PipelineFile, Path]:
    """Read and validate the pipeline file; returns it with its absolute path (relative sources resolve there)."""
    file_path = pipeline_file_path(path)
    if not file_path.is_file():
        raise PipelineConfigError(
            f"pipeline file {file_path} does not exist; set {PIPELINES_ENV} to your pipeline file "
            f"or create {DEFAULT_PIPELINE_FILE} in the working directory"
        )
    origin = str(file_path)
    text = _read_text(file_path)
    root = _compose(text, origin)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:  # composed, but a value cannot be built (an unknown tag, say)
        raise PipelineConfigError(_yaml_error(exc, origin)) from None
    _reject_repeated_keys(root, data, origin)
    return parse_pipeline_file(data, origin=origin, text=text), file_path


def json_schema() -> str:
    """The pipeline file's JSON Schema, for editors (``# yaml-language-server: $schema=...``)."""
    schema = PipelineFile.model_json_schema()
    schema["title"] = "synapse-dagster pipeline file"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"
