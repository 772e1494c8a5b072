"""``synapse-dagster`` command line: one-off batch runs, dry runs, batch discovery and backfills."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="synapse-dagster", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    ingest = sub.add_parser("ingest", help="register a batch and materialize its whole graph in process")
    ingest.add_argument("--pipelines", default=None, help="pipeline file (default: $SYNAPSE_DAGSTER_PIPELINES or pipelines.yaml)")
    ingest.add_argument("--pipeline", required=True)
    ingest.add_argument("--batch", required=True)

    plan = sub.add_parser("plan", help="dry run: materialize up to validated_meta and print the batch's plan; writes nothing to Synapse")
    plan.add_argument("--pipelines", default=None)
    plan.add_argument("--pipeline", required=True)
    plan.add_argument("--batch", required=True)
    plan.add_argument("--out", default=None, help="also write the plan (markdown) to this file")
    plan.add_argument("--units", type=int, default=50, help="how many units to show in full (held-back units first)")

    batches = sub.add_parser("batches", help="list the batch folders of a folders-mode pipeline and whether each is ready")
    batches.add_argument("--pipelines", default=None)
    batches.add_argument("--pipeline", required=True)
    batches.add_argument("--register", action="store_true",
                         help="add the ready ones as partitions of the Dagster instance ($DAGSTER_HOME), for a backfill")

    backfill = sub.add_parser("backfill", help="run registered batches one by one (each its own run), optionally a range")
    backfill.add_argument("--pipelines", default=None)
    backfill.add_argument("--pipeline", required=True)
    backfill.add_argument("--from", dest="first", default=None, help="first batch key (inclusive)")
    backfill.add_argument("--to", dest="last", default=None, help="last batch key (inclusive)")

    args = parser.parse_args(argv)
    if args.command == "ingest":
        from synapse_dagster.pipeline_config import pipeline_file_path
        from synapse_dagster.runs import print_report, run_batch

        result = run_batch(pipeline_file_path(args.pipelines), args.batch, pipeline=args.pipeline)
        print_report(result, args.pipeline, title=f"pipeline {args.pipeline}, batch {args.batch}")
        return 0 if result.success else 1
    if args.command == "plan":
        from synapse_dagster.core.plan.report import plan_markdown
        from synapse_dagster.pipeline_config import pipeline_file_path
        from synapse_dagster.runs import output_of, print_report, run_batch

        result = run_batch(pipeline_file_path(args.pipelines), args.batch, pipeline=args.pipeline, dry_run=True)
        planned = output_of(result, args.pipeline, "validated_meta")
        if planned is not None:
            document = plan_markdown(planned, unit_limit=args.units)
            print(document)
            if args.out:
                Path(args.out).write_text(document, encoding="utf-8")
        print_report(result, args.pipeline, title=f"dry run of pipeline {args.pipeline}, batch {args.batch} (nothing was sent)")
        blocked = any(not c.passed and c.severity.value == "ERROR" for c in result.get_asset_check_evaluations())
        return 0 if result.success and planned is not None and not blocked else 1
    if args.command in ("batches", "backfill"):
        import dagster as dg

        from synapse_dagster.partitions import batches_partitions
        from synapse_dagster.pipeline_config import load_pipeline_file

        pipelines, path = load_pipeline_file(args.pipelines)
        config = next((p for p in pipelines.pipelines if p.name == args.pipeline), None)
        if config is None:
            parser.error(f"{path} defines no pipeline '{args.pipeline}'")
        partitions = batches_partitions(config.name)
        if args.command == "batches":
            return _list_batches(config, path, register=args.register)
        instance = dg.DagsterInstance.get()
        keys = [k for k in sorted(instance.get_dynamic_partitions(partitions.name))
                if (args.first is None or k >= args.first) and (args.last is None or k <= args.last)]
        if not keys:
            print(f"no registered batches of '{config.name}' in that range; register them with 'batches --register'")
            return 1
        from synapse_dagster.runs import run_batch

        failed = []
        for key in keys:
            result = run_batch(path, key, pipeline=config.name)
            print(f"{key}: {'succeeded' if result.success else 'FAILED'} (run {result.run_id})")
            if not result.success:
                failed.append(key)
        print(f"{len(keys) - len(failed)} of {len(keys)} batches succeeded" + (f"; failed: {', '.join(failed)}" if failed else ""))
        return 1 if failed else 0
    return 2


def _list_batches(config, path: Path, *, register: bool) -> int:
    import dagster as dg

    from synapse_dagster.partitions import batches_partitions
    from synapse_dagster.resources import SynapseResource
    from synapse_dagster.sources import FolderBatches, list_existing_batches, resolve_roots, storage_lookup

    roots = resolve_roots(config, path.parent, storage_lookup(SynapseResource(), config.storage))
    ready = []
    with FolderBatches(config, roots) as watcher:
        for name in list_existing_batches(config, roots):
            ok, why = watcher.readiness(name)
            print(f"{name}\t{'ready' if ok else 'waiting: ' + why}")
            if ok:
                ready.append(name)
    if register and ready:
        instance = dg.DagsterInstance.get()
        name = batches_partitions(config.name).name
        new = [b for b in ready if not instance.has_dynamic_partition(name, b)]
        instance.add_dynamic_partitions(name, new)
        print(f"registered {len(new)} new batch(es) as partitions of {name} ({len(ready) - len(new)} already were)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
