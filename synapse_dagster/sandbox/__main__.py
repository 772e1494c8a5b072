"""``synapse-dagster sandbox serve``: run the local Synapse backend (token from $SYNAPSE_SANDBOX_TOKEN)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    from synapse_dagster.sandbox.server import TOKEN_ENV, SandboxStartError, serve

    parser = argparse.ArgumentParser(prog="synapse-dagster sandbox", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("serve", help="serve the sandbox API until interrupted")
    run.add_argument("--data-dir", required=True, help="where state (SQLite) and uploaded bytes are kept")
    run.add_argument("--host", default="127.0.0.1")
    run.add_argument("--port", type=int, default=8765, help="0 picks a free port (see <data-dir>/server.json)")
    run.add_argument("--seed", default=None, help="YAML/JSON file creating storages, data collections and projects")
    run.add_argument("--token-file", default=None, help=f"read the API token from this file instead of ${TOKEN_ENV}")
    args = parser.parse_args(argv)
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
