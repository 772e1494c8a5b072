"""``synapse-sandbox``: the local Synapse backend, the demo that runs against it, and the UI wired to both."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="synapse-sandbox", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the sandbox API until interrupted (token from $SYNAPSE_SANDBOX_TOKEN)")
    serve.add_argument("--data-dir", required=True, help="where state (SQLite) and uploaded bytes are kept")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8765, help="0 picks a free port (see <data-dir>/server.json)")
    serve.add_argument("--seed", default=None, help="YAML/JSON file creating storages, data collections and projects")
    serve.add_argument("--token-file", default=None, help="read the API token from this file instead of the environment")
    demo = sub.add_parser("demo", help="run the main job end to end on the sample data and the local sandbox")
    demo.add_argument("--root", default=".", help="folder holding pipelines.yaml and dagster.yaml (default: .)")
    demo.add_argument("--port", type=int, default=None, help="sandbox port (default: $SYNAPSE_SANDBOX_PORT or 8765)")
    sub.add_parser("ui", help="dagster dev on the demo's instance, wired to the sandbox (see 'ui --help')", add_help=False)
    sub.add_parser("cli", help="a synapse-dagster command (init, doctor, ingest …) wired to the sandbox", add_help=False)
    args, rest = parser.parse_known_args(argv)
    if args.command == "cli":
        from synapse_sandbox.cli import main as cli_main

        return cli_main(rest)
    if args.command == "ui":
        from synapse_sandbox.ui import main as ui_main

        return ui_main(rest)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.command == "demo":
        from synapse_sandbox.demo import run_demo

        return run_demo(Path(args.root), port=args.port)
    return _serve(args)


def _serve(args: argparse.Namespace) -> int:
    from synapse_sandbox.server import TOKEN_ENV, SandboxStartError, serve

    token = os.environ.get(TOKEN_ENV, "")
    if args.token_file:
        token = Path(args.token_file).expanduser().read_text(encoding="utf-8").strip()
    try:
        serve(Path(args.data_dir), token, host=args.host, port=args.port, seed=Path(args.seed) if args.seed else None)
    except SandboxStartError as exc:
        print(f"synapse sandbox: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
