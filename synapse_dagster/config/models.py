"""The pipeline file's models: which sources feed which Synapse data collection, and how.

Definitions are built from this file, so every mistake in it must surface when the code location loads, with
the pipeline and the field named; pydantic with ``extra='forbid'`` gives that for free (see :mod:`.loading`).
The models hand the core plain settings (:meth:`PipelineConfig.source_settings` and friends), so the core never
imports them.
"""

from __future__ import annotations

import re
import string
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from synapse_dagster.core.batches.windows import WindowSpec
from synapse_dagster.core.organize.rules import FileRule, RuleSet
from synapse_dagster.core.organize.layouts import Pattern
from synapse_dagster.core.meta.sources import DEFAULT_PRECEDENCE, SOURCE_KINDS, MetaRecipe
from synapse_dagster.core.meta.sheet_files import SheetSettings
from synapse_dagster.core.plan.batch_plan import PlanSettings
from synapse_dagster.core.plan.content import ContentPolicy
from synapse_dagster.core.sources.roots import SourceSetting

NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,62}$")  # a pipeline name: a Dagster asset key prefix
# Dagster's own rules for owners and strict tags (dagster._utils.tags, definitions.utils), checked here so a bad
# one is reported with its place in the pipeline file rather than as a definition error of some asset
_EMAIL_RE = re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Z|a-z]{2,7}\b")
_TAG_KEY_RE = re.compile(r"([A-Za-z0-9_.-]{1,63}/)?[A-Za-z0-9_.-]{1,63}")
_TAG_VALUE_RE = re.compile(r"[A-Za-z0-9_.-]{0,63}")
RESERVED_TAG_PREFIXES = ("dagster/", "synapse/")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BatchMode(StrEnum):
    FOLDERS = "folders"  # every immediate sub-folder of the source is one batch (partition)
    WINDOWS = "windows"  # flat prefixes: the files modified within one arrival window are one batch
    KEYS = "keys"  # partition keys are free labels; every batch reads the whole source


SECRET_FIELDS = (
    "access_key", "secret_key", "session_token", "gcs_token", "sftp_password", "sftp_key_passphrase",
    "azure_account_key", "azure_connection_string", "azure_sas_token",
)


class ConnectionConfig(_Strict):
    """How to reach a remote source. Secrets are never written here: name the environment variables holding them."""

    endpoint_url: str | None = Field(default=None, description="S3-compatible store (MinIO, SeaweedFS …); default: AWS.")
    region: str | None = None
    gcs_endpoint: str | None = Field(default=None, description="GCS emulator or private endpoint.")
    gcs_project: str | None = None
    sftp_username: str | None = None
    sftp_key_file: str | None = None
    sftp_known_hosts: str | None = None
    sftp_host_key_policy: Literal["strict", "accept-any"] | None = None
    azure_account_name: str | None = None
    azure_endpoint: str | None = Field(default=None, description="Azure blob endpoint (Azurite, another cloud); "
                                       "default: https://<account>.blob.core.windows.net.")
    secrets_from_env: dict[str, str] = Field(
        default_factory=dict,
        description=f"Secret -> environment variable holding it; secrets: {', '.join(SECRET_FIELDS)}. "
        "Unset secrets come from the usual variables (AWS_ACCESS_KEY_ID, SFTP_PASSWORD, …).",
    )

    def values(self) -> dict[str, Any]:
        """The non-secret settings, as ConnectionOptions fields."""
        return self.model_dump(exclude={"secrets_from_env"}, exclude_none=True)

    @field_validator("secrets_from_env")
    @classmethod
    def _known_secrets(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - set(SECRET_FIELDS))
        if unknown:
            raise ValueError(f"unknown secret(s) {unknown}; use {list(SECRET_FIELDS)}")
        return value


class SourceConfig(_Strict):
    path: Annotated[
        str,
        Field(min_length=1, description="Local (/abs, ./rel, ../rel, ~/…: relative to the pipeline file), s3://, "
              "gs://, sftp://user@host[:port]/path, or storage-relative (no scheme, no leading / or .)."),
    ]
    is_recursive: bool = True
    follow_symlinks: Literal["within_root", "never", "always"] = Field(
        default="within_root", description="Local folders: follow a symbolic link only when it stays inside the "
        "source ('within_root'), never, or always. A link that is not followed is listed as refused, with why.")
    connection: ConnectionConfig | None = None


class BatchConfig(_Strict):
    mode: BatchMode = BatchMode.FOLDERS
    ready_marker: str | None = Field(
        default=None,
        description="A batch folder is taken only once this file exists in it (e.g. _READY or manifest.json); "
        "the marker itself is not uploaded.",
    )
    settle_seconds: Annotated[int, Field(ge=0)] = Field(
        default=60, description="Without a marker: a batch is taken once its newest file is at least this old "
        "(windows mode: once its window closed this long ago)."
    )
    window: str = Field(default="hourly", description="windows mode: 'hourly', 'daily' or '<N>m'.")

    @field_validator("window")
    @classmethod
    def _window_spec(cls, value: str) -> str:
        WindowSpec.parse(value)
        return value

    @field_validator("ready_marker")
    @classmethod
    def _marker_is_a_name(cls, value: str | None) -> str | None:
        if value is not None and (not value.strip() or "/" in value):
            raise ValueError("must be a file name inside the batch folder, such as _READY")
        return value


class SensorConfig(_Strict):
    """The sensor that watches a folders-mode source for new batch folders."""

    enabled: bool = True
    default_status: Literal["running", "stopped"] = "stopped"
    minimum_interval_seconds: Annotated[int, Field(ge=5)] = 60
    max_batches_per_tick: Annotated[int, Field(ge=1, le=1000)] = 10
    max_names_per_tick: Annotated[int, Field(ge=100)] = 5000
    lookback: Annotated[int, Field(ge=1, le=10000)] = 100
    full_rescan_every_ticks: Annotated[int, Field(ge=1)] = 30
    max_objects_per_tick: Annotated[int, Field(ge=1)] = Field(
        default=50_000, description="windows mode on S3/GCS: objects scanned per tick (a scan resumes next tick)."
    )
    on_first_pass: Literal["register", "run"] = Field(
        default="register",
        description="Batches already there when the sensor first runs: 'register' adds them as partitions for a "
        "backfill you start, 'run' runs them all.",
    )


def _check_regex(value: str | None) -> str | None:
    if value is not None:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"is not a valid regular expression: {exc}") from None
    return value


class MetadataConfig(_Strict):
    excel_path: str | None = Field(
        default=None,
        description="Excel/CSV metadata file: absolute, relative to the storage's root, or relative to the batch "
        "folder (tried in that order). When unset, meta.xlsx, meta.xls, metadata.xlsx, metadata.xls, meta.csv and "
        "metadata.csv are looked for in the batch folder.",
    )
    key_column: str | None = Field(
        default=None, description="Column matched exactly against the unit's group key; default: the first column."
    )
    worksheet: Annotated[str, Field(min_length=1)] | None = Field(
        default=None, description="Worksheet to read in a workbook with several; default: the only one holding data "
        "(empty worksheets are ignored).",
    )
    encoding: str | None = Field(
        default=None, description="Text encoding of a .csv sheet (e.g. cp1252, cp949, shift_jis); default: its "
        "byte-order mark, else UTF-8, else detected (the plan notes which).",
    )
    directory_field: str | None = Field(default=None, description="Meta field that receives the unit's folder name (or stem).")
    filename_regex: str | None = Field(
        default=None, description="Named groups become meta fields, e.g. '(?P<patient_id>P\\d+)_(?P<age>\\d+)'; "
        "searched in the unit's file names, primary spec first.",
    )
    path_regex: str | None = Field(default=None, description="Like filename_regex, searched in relative paths.")
    sidecars: list[str] = Field(
        default_factory=list,
        description="JSON/YAML sidecar file names: 'meta.yaml' (one per unit folder) or '*.meta.json' (one per stem).",
    )
    static: dict[str, Any] = Field(default_factory=dict, description="Values put into every unit's meta.")
    precedence: list[str] = Field(
        default_factory=lambda: list(DEFAULT_PRECEDENCE),
        description=f"Metadata sources, lowest first; a later one wins a disagreement. Kinds: {', '.join(SOURCE_KINDS)}.",
    )

    _regexes = field_validator("filename_regex", "path_regex")(lambda cls, v: _check_regex(v))

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                b"a".decode(value)  # also refuses codecs that are not text encodings (base64, zlib …)
            except UnicodeDecodeError:
                pass  # a real encoding (UTF-16 …) that one byte is not enough for
            except LookupError:
                raise ValueError(f"'{value}' is not a text encoding Python knows; use a name such as utf-8, cp1252, "
                                 "cp949 or shift_jis") from None
        return value

    @field_validator("precedence")
    @classmethod
    def _every_kind_once(cls, value: list[str]) -> list[str]:
        if sorted(value) != sorted(SOURCE_KINDS):
            raise ValueError(f"must list each of {list(SOURCE_KINDS)} exactly once, lowest first")
        return value

    @field_validator("sidecars")
    @classmethod
    def _sidecar_names(cls, value: list[str]) -> list[str]:
        for name in value:
            if "/" in name or name in ("", "*") or "*" in name[1:]:
                raise ValueError(f"'{name}' must be a file name such as 'meta.yaml' or '*.meta.json' (no folders)")
        return value

    def recipe(self) -> MetaRecipe:
        return MetaRecipe(static=dict(self.static), directory_field=self.directory_field, path_regex=self.path_regex,
                          filename_regex=self.filename_regex, precedence=tuple(self.precedence))


class ContentPolicyConfig(_Strict):
    """What a file whose content is not what its name says (empty, a label that does not parse, an image whose
    first bytes are another format) does to its unit: hold it back, or upload it and say so."""

    required: Literal["hold_back", "warn"] = Field(default="hold_back", description="Files of required specs.")
    optional: Literal["hold_back", "warn"] = Field(default="warn", description="Files of optional specs.")

    def policy(self) -> ContentPolicy:
        return ContentPolicy(self.required, self.optional)


class FileRuleConfig(_Strict):
    pattern: Annotated[str, Field(min_length=1, description="Glob on the path relative to the batch; ** crosses folders.")]
    spec: Annotated[str, Field(min_length=1)]


class RulesConfig(_Strict):
    file_rules: list[FileRuleConfig] = Field(default_factory=list, description="First matching pattern picks the spec.")
    group_key_regex: str | None = Field(default=None, description="Cuts the unit key out of the relative path: the "
                                        "'group_key' named group, else group 1, else the whole match.")

    _regex = field_validator("group_key_regex")(lambda cls, v: _check_regex(v))

    def rule_set(self) -> RuleSet:
        return RuleSet(tuple(FileRule(r.pattern, r.spec) for r in self.file_rules), self.group_key_regex)


class EngineConfig(_Strict):
    """Where a batch's delivery runs: in the run's own process, or fanned out over a Ray cluster in shards."""

    kind: Literal["local", "ray"] = Field(default="local", description=(
        "'local': the run's process uploads and creates units. 'ray': shards of the batch's plan are delivered as "
        "Ray tasks on the cluster at RAY_ADDRESS (a local Ray when unset); each worker reads the sources and takes "
        "SYNAPSE_HOST and SYNAPSE_ACCESS_TOKEN from its own environment."))
    units_per_shard: Annotated[int, Field(ge=1)] = Field(default=2000, description="Units per Ray task.")
    max_shard_retries: Annotated[int, Field(ge=0, le=20)] = Field(default=3, description=(
        "Times a shard is run again when its worker dies or it fails; a re-run sends only what did not land."))
    max_shards_in_flight: Annotated[int, Field(ge=1)] = Field(default=8, description=(
        "Shards submitted and not yet finished; bounds the driver's memory on a batch of millions of units."))


class PipelineConfig(_Strict):
    name: str
    data_collection: Annotated[int, Field(gt=0)]
    storage: Annotated[int, Field(gt=0)]
    project: Annotated[int, Field(gt=0)] | None = None
    source: SourceConfig | None = None
    assets: dict[str, SourceConfig] | None = None
    batches: BatchConfig = BatchConfig()
    sensor: SensorConfig = SensorConfig()
    pattern: Pattern = Pattern.AUTO
    rules: RulesConfig | None = None
    spec_aliases: dict[str, list[str]] = Field(default_factory=dict)
    metadata: MetadataConfig = MetadataConfig()
    dataset_key_template: str = "{batch}/{group_key}"
    max_file_size_mb: Annotated[int, Field(gt=0)] = 50
    creating_data_unit_batch_size: Annotated[int, Field(ge=1, le=1000)] = 100
    upload_max_workers: Annotated[int, Field(ge=1, le=100)] = 16
    staging_max_mb: Annotated[int, Field(ge=1)] = Field(
        default=1024, description="Local disk for copies of remote files while they upload (a bigger file gets a slice of its own)."
    )
    max_invalid_fraction: Annotated[float, Field(ge=0.0, le=1.0)] = 0.5
    content_policy: ContentPolicyConfig = ContentPolicyConfig()
    on_dataset_key_collision: Literal["skip", "fail", "new_version"] = Field(
        default="skip", description="A unit whose dataset_key already exists in the collection with other files or "
        "meta: 'skip' it (reported with the existing unit's ID and batch), 'fail' the run, or add it as a "
        "'new_version' (key suffixed '#v2', '#v3' …, the previous unit's ID in meta.previous_version_unit_id).")
    engine: EngineConfig = EngineConfig()
    description: str | None = Field(default=None, description="Shown on the pipeline's job and on each of its assets.")
    owners: list[str] = Field(default_factory=list, description=(
        "Who answers for the pipeline's assets in the Dagster UI: e-mail addresses or 'team:<name>'."))
    tags: dict[str, str] = Field(default_factory=dict, description=(
        "Tags on the pipeline's assets and runs, to filter them in the UI (keys and values: letters, digits, "
        "'_', '-', '.'; a key may have one 'namespace/' part)."))

    @field_validator("name")
    @classmethod
    def _name_is_identifier(cls, value: str) -> str:
        if not NAME_RE.match(value):
            raise ValueError(
                "must start with a letter and hold only letters, digits and '_' (it becomes a Dagster asset prefix)"
            )
        return value

    @field_validator("owners")
    @classmethod
    def _owners_are_dagster_owners(cls, value: list[str]) -> list[str]:
        for owner in value:
            if not (_EMAIL_RE.fullmatch(owner) or (owner.startswith("team:") and len(owner) > 5)):
                raise ValueError(f"'{owner}' is neither an e-mail address nor a team written 'team:<name>'")
        return value

    @field_validator("tags")
    @classmethod
    def _tags_are_dagster_tags(cls, value: dict[str, str]) -> dict[str, str]:
        for key, tag in value.items():
            if key.startswith(RESERVED_TAG_PREFIXES):
                raise ValueError(f"key '{key}': keys starting with {' or '.join(RESERVED_TAG_PREFIXES)} are "
                                 "set by Dagster and this project; choose another prefix")
            if not _TAG_KEY_RE.fullmatch(key):
                raise ValueError(f"key '{key}': use letters, digits, '_', '-' and '.', at most 63 of them, with at "
                                 "most one 'namespace/' part")
            if not _TAG_VALUE_RE.fullmatch(tag):
                raise ValueError(f"'{key}': value '{tag}': use letters, digits, '_', '-' and '.', at most 63 of them")
        return value

    @field_validator("dataset_key_template")
    @classmethod
    def _template_fields(cls, value: str) -> str:
        allowed = {"pipeline", "batch", "group_key"}
        try:
            fields = {name for _, name, _, _ in string.Formatter().parse(value) if name}
        except ValueError as exc:
            raise ValueError(f"is not a valid format string: {exc}") from exc
        unknown = fields - allowed
        if unknown:
            raise ValueError(f"uses unknown field(s) {sorted(unknown)}; allowed: {sorted(allowed)}")
        if "group_key" not in fields:
            raise ValueError("must contain {group_key}, or every unit of a batch gets the same key")
        return value

    @model_validator(mode="after")
    def _one_source_mode(self) -> PipelineConfig:
        if (self.source is None) == (self.assets is None):
            raise ValueError("give exactly one of 'source' (single-path mode) or 'assets' (multi-path mode)")
        if self.assets is not None and not self.assets:
            raise ValueError("'assets' must name at least one file specification")
        if self.pattern is Pattern.RULES and self.rules is None:
            raise ValueError("pattern 'rules' needs a 'rules:' section (file_rules and/or group_key_regex)")
        if self.rules is not None and self.pattern not in (Pattern.AUTO, Pattern.RULES):
            raise ValueError(f"'rules' is given, so pattern must be 'rules' (or left out), not '{self.pattern.value}'")
        if self.assets is not None and self.pattern not in (Pattern.AUTO, Pattern.MULTI_PATH, Pattern.RULES):
            raise ValueError(f"'assets' (multi-path mode) groups by stem across sources; pattern '{self.pattern.value}' "
                             "does not apply (leave it out)")
        if self.batches.mode is BatchMode.WINDOWS and self.assets is not None:
            raise ValueError("batches.mode 'windows' watches one flat source; use 'source', not 'assets'")
        if self.batches.mode is BatchMode.WINDOWS and self.batches.ready_marker:
            raise ValueError("batches.ready_marker needs batch folders; windows mode uses settle_seconds instead")
        if self.source is not None and self.pattern is Pattern.MULTI_PATH:
            raise ValueError("pattern 'multi_path' needs 'assets' (one source per spec) instead of 'source'")
        if self.engine.kind == "ray" and self.on_dataset_key_collision == "fail":
            raise ValueError("on_dataset_key_collision 'fail' stops a whole batch before it creates anything, and "
                             "engine 'ray' delivers shards on their own: use 'skip' or 'new_version', or engine "
                             "'local'")
        return self

    @property
    def fixed_pattern(self) -> Pattern | None:
        """The pattern the file fixes, or ``None`` when it is to be detected from the batch."""
        if self.rules is not None:
            return Pattern.RULES
        if self.assets is not None:
            return Pattern.MULTI_PATH
        return None if self.pattern is Pattern.AUTO else self.pattern

    @property
    def single_path(self) -> bool:
        return self.source is not None

    def source_paths(self) -> dict[str | None, SourceConfig]:
        """Spec name -> source (``None`` as key in single-path mode)."""
        if self.source is not None:
            return {None: self.source}
        return dict(self.assets or {})

    def source_settings(self) -> list[SourceSetting]:
        return [
            SourceSetting(spec, source.path, source.is_recursive,
                          {**(source.connection.values() if source.connection else {}),
                           "follow_symlinks": source.follow_symlinks},
                          dict(source.connection.secrets_from_env) if source.connection else {})
            for spec, source in self.source_paths().items()
        ]

    def plan_settings(self) -> PlanSettings:
        return PlanSettings(self.name, self.dataset_key_template, self.metadata.recipe(), self.max_file_size_mb * 2**20,
                            self.content_policy.policy())

    def sheet_settings(self) -> SheetSettings:
        return SheetSettings(self.metadata.excel_path, self.metadata.key_column, discover=self.single_path,
                             source_spec=next(iter(self.source_paths())), worksheet=self.metadata.worksheet,
                             encoding=self.metadata.encoding)

    @property
    def label(self) -> str:
        return f"pipeline '{self.name}'"


class PipelineFile(_Strict):
    pipelines: list[PipelineConfig]

    @model_validator(mode="after")
    def _unique_names(self) -> PipelineFile:
        """Raised at the second pipeline's ``name``, so the message (and the file's line) points at it."""
        first: dict[str, int] = {}
        for index, pipeline in enumerate(self.pipelines):
            if pipeline.name in first:
                error = PydanticCustomError("duplicate_name", "pipeline name '{name}' is used twice (also by pipeline "
                                            "#{first}); names must be unique", {"name": pipeline.name,
                                                                                "first": first[pipeline.name] + 1})
                raise ValidationError.from_exception_data(
                    type(self).__name__, [InitErrorDetails(type=error, loc=("pipelines", index, "name"),
                                                           input=pipeline.name)])
            first[pipeline.name] = index
        return self
