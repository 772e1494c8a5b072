"""``synapse-dagster init``: from nothing to a pipeline file that runs, asking only what a user knows.

The order is the order a run meets things: the SDK and the credentials (one real authenticated call), the data
collection and what its units need, the storage, the source (listed at once), how batches arrive, then a preview
of the first units planned exactly as a run plans them, with an offer to fix what would hold them back. Only
then is the file written, commented, and loaded back as the code location will load it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from synapse_dagster.cli.init_file import names_in, write_pipeline
from synapse_dagster.cli.init_view import echo_all, preview_lines
from synapse_dagster.cli.prompts import InitError, Prompter, Question
from synapse_dagster.config.loading import PipelineConfigError, parse_pipeline_file, pipeline_file_path
from synapse_dagster.config.models import NAME_RE, BatchMode, PipelineConfig
from synapse_dagster.core.health.checks import one_line
from synapse_dagster.core.health.synapse import sdk_version, synapse_checks
from synapse_dagster.core.organize.specs import CollectionSpecs
from synapse_dagster.core.setup.collections import (
    choice_of, default_storage, describe_collection, list_collections, required_meta_fields)
from synapse_dagster.core.setup.preview import Preview, PreviewSettings, preview
from synapse_dagster.core.sources.files import SourceError
from synapse_dagster.core.sources.listing import check_source, list_subfolders
from synapse_dagster.core.sources.roots import SourceRoot, SourceSetting, resolve_roots, source_kind
from synapse_dagster.defs.resources import SynapseResource

LOGIN_HELP = ("run 'synapse login' (it writes ~/.synapse/config.json), or set SYNAPSE_HOST and SYNAPSE_ACCESS_TOKEN, "
              "then run 'synapse-dagster init' again")
SOURCE_HINT = "a local folder (./incoming, /mnt/nas/xray), s3://bucket/prefix, gs://bucket/prefix, " \
              "sftp://user@host/path, or a path inside the storage"


@dataclass
class InitFlags:
    """Every answer init can be given up front; without a terminal they are the only answers."""

    pipelines: str | None = None
    collection: str | None = None
    storage: str | None = None
    source: str | None = None
    batches: str | None = None
    batch: str | None = None
    pattern: str | None = None
    key_column: str | None = None
    filename_regex: str | None = None
    sidecars: str | None = None  # comma-separated metadata.sidecars entries
    name: str | None = None
    project: str | None = None


@dataclass
class Session:
    """What init has learned so far; ``values`` is the pipeline entry being drafted, ``notes`` its comments."""

    flags: InitFlags
    ui: Prompter
    synapse: SynapseResource
    file: Path
    values: dict[str, Any] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    specs: CollectionSpecs | None = None
    declined: set[str] = field(default_factory=set)

    @property
    def base_dir(self) -> Path:
        return self.file.parent

    @property
    def client(self) -> Any:
        return self.synapse.client()

    def say(self, line: str = "") -> None:
        self.ui.echo(line)


def run_init(flags: InitFlags, *, interactive: bool) -> Path:
    """The whole wizard; returns the pipeline file it wrote."""
    session = Session(flags, Prompter(interactive), SynapseResource(), pipeline_file_path(flags.pipelines).absolute())
    connect(session)
    pick_collection(session)
    pick_storage(session)
    pick_source(session)
    pick_batches(session)
    shown = review_units(session)
    name_it(session)
    return write_pipeline(session, shown)


def connect(session: Session) -> None:
    """The SDK version, then credentials, host and token, as ``doctor`` checks them; init stops at the first failure."""
    checks = [sdk_version()]
    found, creds = synapse_checks(session.synapse.credentials, session.synapse.client)
    for check in [*checks, *found]:
        session.say(check.line)
    if not checks[0].passed or creds is None:
        raise InitError(f"Synapse cannot be used yet: {LOGIN_HELP}")
    session.say()


def pick_collection(session: Session) -> None:
    question = Question("--collection", "Data collection ID (press Enter to choose from a list):",
                        check=lambda a: None if a == "" or a.isdigit() else "give the collection's number, or nothing",
                        default=None)
    answer = session.ui.text(question, session.flags.collection)
    while True:
        ident = int(answer) if answer else choose_from_list(session)
        problem = adopt_collection(session, ident)
        if problem is None:
            return
        if not session.ui.interactive:
            raise InitError(f"--collection {ident}: {problem}")
        session.say(f"  ✗ {problem} — try again")
        answer = session.ui.text(question, None)


def choose_from_list(session: Session) -> int:
    listing = list_collections(session.client)
    if not listing.choices:
        raise InitError("this Synapse account sees no data collections; create one in Synapse (with its file "
                        "specifications), then run init again")
    if listing.partial:
        session.say(f"  showing the first {len(listing.choices)} of {listing.count} collections")
    session.say("  (* marks a required file specification)")
    choices = [(c.title, c.id) for c in listing.choices] + [("another one: type its ID", 0)]
    picked = session.ui.choose("Which data collection do the files go to?", choices, default=listing.choices[0].id)
    if picked:
        return picked
    question = Question("--collection", "Data collection ID:",
                        check=lambda a: None if a.isdigit() else "give the collection's number (in its Synapse URL)")
    return int(session.ui.text(question, None))


def adopt_collection(session: Session, ident: int) -> str | None:
    """The collection's specs, shown with what its units need; or why it cannot be used."""
    try:
        choice = choice_of(session.client.get_data_collection(ident))
    except Exception as exc:  # a 404 or a refusal: said as one line, and asked again in a terminal
        return f"data collection {ident} cannot be read: {one_line(exc)}"
    if choice.specs is None:
        return f"data collection {ident} cannot be ingested into: {choice.problem}"
    session.specs = choice.specs
    echo_all(describe_collection(choice.specs), session.say)
    required = required_meta_fields(choice.specs)
    session.values["data_collection"] = ident
    session.notes["data_collection"] = f"'{choice.name}': " + ", ".join(
        s.name + (" (required)" if s.is_required else "") for s in choice.specs.specs) + \
        (f"; meta requires {', '.join(required)}" if required else "")
    session.say()
    return None


def pick_storage(session: Session) -> None:
    found = default_storage(session.client)
    if found is not None:
        label = f"storage {found.get('id')} '{found.get('name')}' ({found.get('provider')})"
        session.say(f"The default storage is {label}.")
        if session.flags.storage is None and session.ui.confirm("Use the default storage?", default=True):
            session.values["storage"], session.notes["storage"] = int(found["id"]), f"{label}, the default storage"
            return
    question = Question("--storage", "Storage ID:", check=lambda a: _storage_problem(session, a),
                        default=None if found is None else str(found.get("id")))
    answer = int(session.ui.text(question, session.flags.storage))
    stored = session.synapse.storage(answer)
    session.values["storage"] = answer
    session.notes["storage"] = f"storage {answer} '{stored.get('name')}' ({stored.get('provider')})"


def _storage_problem(session: Session, answer: str) -> str | None:
    if not answer.isdigit():
        return "give the storage's number (the one in its Synapse URL)"
    try:
        session.synapse.storage(int(answer))
    except Exception as exc:
        return f"storage {answer} cannot be read: {one_line(exc)}"
    return None


def pick_source(session: Session) -> None:
    question = Question("--source", "Where are the files?", check=lambda a: _source_problem(session, a),
                        hint=f"({SOURCE_HINT})")
    answer = session.ui.text(question, session.flags.source)
    path = written_path(answer, session.base_dir)
    session.values["source"] = {"path": path, "is_recursive": True}
    session.notes["source.path"] = f"checked by init: it exists and can be listed ({source_kind(path)})"


def _source_problem(session: Session, answer: str) -> str | None:
    if not answer:
        return f"give the source: {SOURCE_HINT}"
    try:
        root = source_roots(session, written_path(answer, session.base_dir))[0]
        check_source(root.location, root.options)
    except SourceError as exc:
        return str(exc).removeprefix("the source: ").replace(" in the pipeline file", "")
    return None


def source_roots(session: Session, path: str) -> list[SourceRoot]:
    storage_id = int(session.values["storage"])
    return resolve_roots([SourceSetting(None, path)], owner="the source", base_dir=session.base_dir,
                         storage=lambda: session.synapse.storage(storage_id), storage_id=storage_id)


def written_path(answer: str, base_dir: Path) -> str:
    """A relative local path is typed relative to here; the file holds it relative to the pipeline file's folder."""
    if not answer or source_kind(answer) != "local" or answer.startswith(("~", "/", "file://")):
        return answer
    absolute = (Path.cwd() / answer).resolve()
    try:
        relative = absolute.relative_to(base_dir.resolve())
    except ValueError:
        return str(absolute)
    return "." if relative == Path(".") else f"./{relative.as_posix()}"


def pick_batches(session: Session) -> None:
    root = source_roots(session, session.values["source"]["path"])[0]
    folders = list_subfolders(root.location, root.options)
    first = [name for _, name in zip(range(6), folders)]
    suggested = "folders" if first else "keys"
    choices = [(f"every sub-folder is one batch (folders mode; here: {', '.join(first[:5]) or 'none yet'})", "folders"),
               ("the whole source is one batch; batch keys are labels (keys mode)", "keys")]
    mode = session.flags.batches or session.ui.choose("How do new files arrive?", choices, default=suggested)
    session.values["batches"] = {"mode": mode}
    session.notes["batches.mode"] = ("each sub-folder of the source is one batch (partition key = its name)"
                                     if mode == "folders" else "each run reads the whole source; keys are labels")


def review_units(session: Session) -> Preview:
    """Preview, offer one fix, preview again, until nothing is offered or everything offered was declined."""
    from synapse_dagster.cli.init_fixes import offer_fix

    if session.flags.key_column:
        session.values.setdefault("metadata", {})["key_column"] = session.flags.key_column
    if session.flags.filename_regex:
        session.values.setdefault("metadata", {})["filename_regex"] = session.flags.filename_regex
    if session.flags.pattern:
        session.values["pattern"] = session.flags.pattern
    if session.flags.sidecars:
        session.values.setdefault("metadata", {})["sidecars"] = [
            s.strip() for s in session.flags.sidecars.split(",") if s.strip()]
    while True:
        shown = planned_sample(session)
        session.say()
        echo_all(preview_lines(shown), session.say)
        session.say()
        if not offer_fix(session, shown):
            record_findings(session, shown)
            return shown


def record_findings(session: Session, shown: Preview) -> None:
    """Write down what the preview relied on (the pattern, the sheet's key column), with its evidence."""
    if "pattern" not in session.values:
        session.values["pattern"] = "auto"
    if session.values["pattern"] == "auto" and "pattern" not in session.notes:
        session.notes["pattern"] = f"detected {shown.detection.describe().split(',')[0]} in {shown.sampled}: " \
                                   f"{shown.detection.evidence[0]}"
    sheet = shown.sheet
    if sheet is None:
        return
    metadata = session.values.setdefault("metadata", {})
    metadata.setdefault("key_column", sheet.key_column)
    matched = len(shown.plan.units) - len(shown.plan.units_without_sheet_row)
    session.notes.setdefault("metadata.key_column", f"in {sheet.name}: names {matched} of {len(shown.plan.units)} "
                             "sampled units (matched exactly against the unit's folder or stem)")


def planned_sample(session: Session) -> Preview:
    config = draft_config(session, "preview")
    roots = source_roots(session, session.values["source"]["path"])
    settings = PreviewSettings(
        plan=config.plan_settings(), sheet=config.sheet_settings(), per_batch_folder=config.batches.mode is BatchMode.FOLDERS,
        pattern=config.fixed_pattern, sidecars=tuple(config.metadata.sidecars))
    try:
        return preview(roots, session.specs, settings, storage=lambda: session.synapse.storage(config.storage),
                       batch=session.flags.batch)
    except (SourceError, ValueError) as exc:
        raise InitError(f"the source cannot be previewed: {exc}") from None


def draft_config(session: Session, name: str | None = None) -> PipelineConfig:
    """The draft as the pipeline file's own model reads it, so a bad answer fails here, naming the field."""
    values = {"name": name or session.values.get("name", "draft"), **session.values}
    try:
        return parse_pipeline_file({"pipelines": [values]}, origin="the answers").pipelines[0]
    except PipelineConfigError as exc:
        raise InitError(" ".join(str(exc).split())) from None


def name_it(session: Session) -> None:
    taken = names_in(session.file)
    suggested = _free_name(_slug(session.specs.name if session.specs else "ingest"), taken)
    question = Question("--name", "Name of the pipeline (the asset group in the Dagster UI):",
                        check=lambda a: _name_problem(a, taken, session.file), default=suggested)
    session.values = {"name": session.ui.text(question, session.flags.name), **session.values}
    session.notes["name"] = "the asset group and key prefix in the Dagster UI"
    project = session.ui.text(Question("--project", "Project ID, to give each new unit a task there (Enter: none):",
                                       check=lambda a: _project_problem(session, a), default=""),
                              session.flags.project)
    if project:
        session.values["project"] = int(project)


def _name_problem(answer: str, taken: set[str], file: Path) -> str | None:
    if not NAME_RE.match(answer):
        return "start with a letter and use only letters, digits and '_', at most 63 (it becomes a Dagster asset prefix)"
    if answer in taken:
        return f"{file.name} already has a pipeline named '{answer}'; choose another name"
    return None


def _free_name(name: str, taken: set[str]) -> str:
    return next(f"{name}_{n}" if n else name for n in range(len(taken) + 2) if (f"{name}_{n}" if n else name) not in taken)


def _project_problem(session: Session, answer: str) -> str | None:
    if answer == "":
        return None
    if not answer.isdigit():
        return "give the project's number, or nothing"
    try:
        project = session.client.get_project(int(answer))
    except Exception as exc:
        return f"project {answer} cannot be read: {one_line(exc)}"
    title = project.get("title") if isinstance(project, dict) else None
    session.notes["project"] = (f"'{title}': " if title else "") + "each created unit gets exactly one task there"
    return None


def _slug(text: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_").lower()
    return slug if slug[:1].isalpha() else f"ingest_{slug}".rstrip("_")


def interactive_default() -> bool:
    """Ask only when a person can answer: stdin and stdout are terminals."""
    import sys

    return sys.stdin.isatty() and sys.stdout.isatty()


