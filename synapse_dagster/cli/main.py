"""``synapse-dagster``: run one batch, dry-run it, list and register batches, backfill, export the file schema,
check a setup (``doctor``).

One function per command; each calls the run helpers in :mod:`.runs` and prints with :mod:`.report`.
"""

from __future__ import annotations

import gc
import sys
from pathlib import Path

import click
import dagster as dg
from dagster._core.errors import DagsterHomeNotSetError

from synapse_dagster.cli.instance_check import DAGSTER_HOME_FIX
from synapse_dagster.config.loading import PipelineConfigError, json_schema, load_pipeline_file, pipeline_file_path
from synapse_dagster.core.batches.keys import BatchKeyError
from synapse_dagster.core.deliver.ledger import LedgerUrlError
from synapse_dagster.core.redaction import redact
from synapse_dagster.core.synapse.credentials import SynapseConfigError
from synapse_dagster.defs.resources import SettingError

USAGE_ERRORS = (PipelineConfigError, SynapseConfigError, BatchKeyError, LedgerUrlError, SettingError)
PIPELINES_HELP = "pipeline file (default: $SYNAPSE_DAGSTER_PIPELINES or pipelines.yaml)"
pipelines_option = click.option("--pipelines", default=None, metavar="FILE", help=PIPELINES_HELP)
pipeline_option = click.option("--pipeline", required=True, metavar="NAME", help="a pipeline named in the pipeline file")
batch_option = click.option("--batch", required=True, metavar="KEY",
                            help="the batch (partition) key: in folders mode, the batch folder's name")


@click.group(help="Ingest files into Synapse data collections as Dagster assets: one-off batch runs, dry runs, "
             "batch discovery and backfills.")
def cli() -> None:
    pass


@cli.command(help="Register a batch and materialize its whole graph in process; exits 1 when the run failed.")
@pipelines_option
@pipeline_option
@batch_option
def ingest(pipelines: str | None, pipeline: str, batch: str) -> None:
    from synapse_dagster.cli.report import print_report
    from synapse_dagster.cli.runs import run_batch

    result = run_batch(pipeline_file_path(pipelines), batch, pipeline=pipeline)
    print_report(result, pipeline, title=f"pipeline {pipeline}, batch {batch}")
    sys.exit(0 if result.success else 1)


@cli.command(help="Dry run: materialize up to validated_meta and print the batch's plan; writes nothing to Synapse. "
             "Exits 1 when the batch would be blocked.")
@pipelines_option
@pipeline_option
@batch_option
@click.option("--out", default=None, metavar="FILE", help="also write the plan (markdown) to this file")
@click.option("--units", default=50, show_default=True, help="how many units to show in full (held-back units first)")
def plan(pipelines: str | None, pipeline: str, batch: str, out: str | None, units: int) -> None:
    from synapse_dagster.cli.report import print_report
    from synapse_dagster.cli.runs import output_of, run_batch
    from synapse_dagster.core.plan.report import plan_markdown

    result = run_batch(pipeline_file_path(pipelines), batch, pipeline=pipeline, dry_run=True)
    planned = output_of(result, pipeline, "validated_meta")
    if planned is not None:
        document = plan_markdown(planned, unit_limit=units)
        click.echo(document)
        if out:
            Path(out).write_text(document, encoding="utf-8")
    print_report(result, pipeline, title=f"dry run of pipeline {pipeline}, batch {batch} (nothing was sent)")
    blocked = any(not c.passed and c.severity.value == "ERROR" for c in result.get_asset_check_evaluations())
    sys.exit(0 if result.success and planned is not None and not blocked else 1)


@cli.command(help="List the batch folders of a folders-mode pipeline and whether each is ready.")
@pipelines_option
@pipeline_option
@click.option("--register", is_flag=True,
              help="add the ready ones as partitions of the Dagster instance ($DAGSTER_HOME), for a backfill")
def batches(pipelines: str | None, pipeline: str, register: bool) -> None:
    from synapse_dagster.cli.runs import find_pipeline, ready_batches
    from synapse_dagster.defs.partitions import batches_partitions

    path = pipeline_file_path(pipelines)
    config = find_pipeline(path, pipeline)
    ready = []
    for name, ok, why in ready_batches(config, path.parent):
        click.echo(f"{name}\t{'ready' if ok else 'waiting: ' + why}")
        if ok:
            ready.append(name)
    if register and ready:
        instance = dg.DagsterInstance.get()
        partitions = batches_partitions(config.name).name
        new = [b for b in ready if not instance.has_dynamic_partition(partitions, b)]
        instance.add_dynamic_partitions(partitions, new)
        click.echo(f"registered {len(new)} new batch(es) as partitions of {partitions} ({len(ready) - len(new)} already were)")


@cli.command(help="Run registered batches one by one (each its own run), optionally only a range.")
@pipelines_option
@pipeline_option
@click.option("--from", "first", default=None, metavar="KEY", help="first batch key (inclusive)")
@click.option("--to", "last", default=None, metavar="KEY", help="last batch key (inclusive)")
def backfill(pipelines: str | None, pipeline: str, first: str | None, last: str | None) -> None:
    from synapse_dagster.cli.runs import find_pipeline, run_batch
    from synapse_dagster.defs.partitions import batches_partitions

    path = pipeline_file_path(pipelines)
    config = find_pipeline(path, pipeline)
    instance = dg.DagsterInstance.get()
    keys = [k for k in sorted(instance.get_dynamic_partitions(batches_partitions(config.name).name))
            if (first is None or k >= first) and (last is None or k <= last)]
    if not keys:
        click.echo(f"no registered batches of '{config.name}' in that range; register them with 'batches --register'")
        sys.exit(1)
    failed = []
    for key in keys:
        result = run_batch(path, key, pipeline=config.name)
        click.echo(f"{key}: {'succeeded' if result.success else 'FAILED'} (run {result.run_id})")
        if not result.success:
            failed.append(key)
    click.echo(f"{len(keys) - len(failed)} of {len(keys)} batches succeeded" + (f"; failed: {', '.join(failed)}" if failed else ""))
    sys.exit(1 if failed else 0)


@cli.command(help="List the units that failed for good (stage, reason, HTTP status, attempts), of one batch or all.")
@pipelines_option
@pipeline_option
@click.option("--batch", default=None, metavar="KEY", help="only this batch")
def failed(pipelines: str | None, pipeline: str, batch: str | None) -> None:
    from synapse_dagster.cli.runs import dead_letter_rows

    rows = dead_letter_rows(pipeline_file_path(pipelines), pipeline, batch)
    for batch_key, key, stage, reason, status, attempts in rows:
        click.echo(f"{batch_key}\t{key}\t{stage}\t{status or '-'}\t{attempts}\t{reason}")
    click.echo(f"{len(rows)} unit(s) failed for good" + (f" in batch {batch}" if batch else "")
               + ("; 'retry-failed' redoes just those" if rows else ""))


@cli.command(name="retry-failed", help="Run again the batches holding units that failed for good; only those units "
             "are redone (everything else is already recorded as delivered). Exits 1 if any still fails.")
@pipelines_option
@pipeline_option
@click.option("--batch", default=None, metavar="KEY", help="only this batch")
def retry_failed(pipelines: str | None, pipeline: str, batch: str | None) -> None:
    from synapse_dagster.cli.report import print_report
    from synapse_dagster.cli.runs import dead_letter_rows, run_batch

    path = pipeline_file_path(pipelines)
    batches = sorted({row[0] for row in dead_letter_rows(path, pipeline, batch)})
    if not batches:
        click.echo("nothing to retry: no unit failed for good")
        return
    results = [run_batch(path, key, pipeline=pipeline) for key in batches]
    for key, result in zip(batches, results):
        print_report(result, pipeline, title=f"retry of pipeline {pipeline}, batch {key}")
    left = dead_letter_rows(path, pipeline, batch)
    click.echo(f"{len(left)} unit(s) still failed for good")
    sys.exit(0 if all(r.success for r in results) and not left else 1)


@cli.command(help="Check the pipeline file and print its pipelines, or with --json-schema the file's JSON Schema.")
@pipelines_option
@click.option("--json-schema", "as_schema", is_flag=True, help="print the JSON Schema editors can validate the file with")
def check(pipelines: str | None, as_schema: bool) -> None:
    if as_schema:
        click.echo(json_schema(), nl=False)
        return
    loaded, path = load_pipeline_file(pipelines)
    for p in loaded.pipelines:
        click.echo(f"{p.name}: data collection {p.data_collection}, storage {p.storage}, "
                   f"{'single-path' if p.single_path else 'multi-path'}, batches by {p.batches.mode.value}")
    click.echo(f"{path}: {len(loaded.pipelines)} pipeline(s), valid")


@cli.command(help="Check the setup a run needs (pipeline file, SDK, Synapse credentials, Dagster instance, ledger, "
             "Ray, each pipeline's collection, storage, project and sources): one line each, with the fix when it "
             "failed. Exits 1 when any check failed.")
@pipelines_option
def doctor(pipelines: str | None) -> None:
    from synapse_dagster.cli.doctor import doctor as run_checks
    from synapse_dagster.core.health.checks import exit_code

    checks = []
    for check in run_checks(pipelines):
        click.echo(check.line)
        checks.append(check)
    sys.exit(exit_code(checks))


@cli.command(help="Set up a pipeline: checks the SDK and the credentials, lists the data collections, checks the "
             "source, previews the first units as a run would plan them, offers fixes, and writes (or extends) the "
             "pipeline file. Asks in a terminal; without one (CI, pipes) it takes every answer from the flags.")
@pipelines_option
@click.option("--collection", default=None, metavar="ID", help="data collection ID (asked, with a list, in a terminal)")
@click.option("--storage", default=None, metavar="ID", help="storage ID (default: the tenant's default storage)")
@click.option("--source", default=None, metavar="PATH",
              help="local folder, s3://, gs://, sftp://user@host/path, or a path inside the storage")
@click.option("--batches", type=click.Choice(["folders", "keys"]), default=None,
              help="folders: every sub-folder of the source is one batch; keys: the whole source is")
@click.option("--batch", default=None, metavar="KEY", help="the batch folder to preview (default: the first)")
@click.option("--pattern", type=click.Choice(["auto", "nested", "type_separated", "flat", "deep_nested"]),
              default=None, help="how files make units (default: auto, detected from a sample)")
@click.option("--key-column", default=None, metavar="COLUMN", help="the sheet column that names each unit")
@click.option("--filename-regex", default=None, metavar="REGEX", help="named groups become meta fields")
@click.option("--sidecars", default=None, metavar="NAMES",
              help="JSON/YAML meta files to read, comma-separated: meta.yaml (one per unit folder), *.meta.json (per stem)")
@click.option("--name", default=None, metavar="NAME", help="the pipeline's name (default: from the collection's)")
@click.option("--project", default=None, metavar="ID", help="a project: each created unit gets a task there")
@click.option("--no-input", is_flag=True, help="ask nothing even in a terminal: the flags are the answers")
def init(no_input: bool, **answers: str | None) -> None:
    from synapse_dagster.cli.init import InitFlags, interactive_default, run_init

    try:
        run_init(InitFlags(**answers), interactive=interactive_default() and not no_input)
    except (KeyboardInterrupt, EOFError):
        click.echo("\ninit cancelled; nothing was written", err=True)
        sys.exit(130)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (tests call this), printing errors as one line, never a traceback."""
    gc.freeze()  # the imports' objects live as long as the process: no collection needs to walk them (see cli)
    try:
        cli.main(args=argv, prog_name="synapse-dagster", standalone_mode=False)
    except SystemExit as exc:
        if isinstance(exc.code, str):  # a message meant for the user, e.g. an unknown pipeline name
            click.echo(f"synapse-dagster: {exc.code}", err=True)
            return 1
        return int(exc.code or 0)
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except DagsterHomeNotSetError:
        click.echo("synapse-dagster: DAGSTER_HOME is not set: point it at a folder for Dagster's runs and history "
                   f"(for example: {DAGSTER_HOME_FIX})", err=True)
        return 2
    except USAGE_ERRORS as exc:  # the user's to fix: one line naming the setting, exit 2
        click.echo(f"synapse-dagster: {redact(str(exc))}", err=True)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
