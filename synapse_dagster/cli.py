"""``synapse-dagster`` command line: the demo, one-off batch runs, batch discovery and the sandbox."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="synapse-dagster", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="run the main job end to end on the sample data and the local sandbox")
    demo.add_argument("--root", default=".", help="folder holding pipelines.yaml and dagster.yaml (default: .)")
    demo.add_argument("--port", type=int, default=None, help="sandbox port (default: $SYNAPSE_SANDBOX_PORT or 8765)")

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

    batches = sub.add_parser("batches", help="list the batch folders a folders-mode pipeline can see")
    batches.add_argument("--pipelines", default=None)
    batches.add_argument("--pipeline", required=True)

    sub.add_parser("sandbox", help="run the local Synapse sandbox backend (see 'sandbox --help')", add_help=False)

    args, rest = parser.parse_known_args(argv)
    if args.command == "sandbox":
        from synapse_dagster.sandbox.__main__ import main as sandbox_main

        return sandbox_main(rest)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.command == "demo":
        from synapse_dagster.demo import run_demo

        return run_demo(Path(args.root), port=args.port)
    if args.command == "ingest":
        from synapse_dagster.pipeline_config import pipeline_file_path
        from synapse_dagster.runs import print_report, run_batch

        result = run_batch(pipeline_file_path(args.pipelines), args.batch, pipeline=args.pipeline)
        print_report(result, args.pipeline, title=f"pipeline {args.pipeline}, batch {args.batch}")
        return 0 if result.success else 1
    if args.command == "plan":
        from synapse_dagster.core.plan_report import plan_markdown
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
    if args.command == "batches":
        from synapse_dagster.pipeline_config import load_pipeline_file
        from synapse_dagster.sources import list_existing_batches, resolve_roots

        pipelines, path = load_pipeline_file(args.pipelines)
        config = next((p for p in pipelines.pipelines if p.name == args.pipeline), None)
        if config is None:
            parser.error(f"{path} defines no pipeline '{args.pipeline}'")
        for name in list_existing_batches(config, resolve_roots(config, path.parent)):
            print(name)
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
