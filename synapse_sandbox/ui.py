"""``scripts/ui``: the Dagster UI (``dagster dev``) wired to the local Synapse sandbox and the demo instance.

Runs of the demo show up in the UI because both use ``.synapse_dagster/dagster_home``; new batches can be
added from the UI (``Materialize`` > add a partition) or with ``synapse-dagster ingest``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from synapse_sandbox.demo import DEFAULT_SANDBOX_PORT, DemoPaths, prepare_dagster_home, running_sandbox, sandbox_token


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="synapse-sandbox ui", description=__doc__)
    parser.add_argument("--root", default=".")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3000, help="UI port (default 3000)")
    parser.add_argument("--sandbox-port", type=int, default=int(os.environ.get("SYNAPSE_SANDBOX_PORT", DEFAULT_SANDBOX_PORT)))
    args = parser.parse_args(argv)
    paths = DemoPaths(Path(args.root).resolve())
    token = sandbox_token(paths)
    prepare_dagster_home(paths)
    with running_sandbox(paths, token, args.sandbox_port) as url:
        env = dict(os.environ, SYNAPSE_HOST=url, SYNAPSE_ACCESS_TOKEN=token)
        print(f"Synapse sandbox at {url}; Dagster UI on http://{args.host}:{args.port} (Ctrl-C stops both)")
        command = [sys.executable, "-m", "dagster", "dev", "-w", str(paths.root / "workspace.yaml"),
                   "-h", args.host, "-p", str(args.port)]
        try:
            return subprocess.call(command, cwd=paths.root, env=env)
        except KeyboardInterrupt:
            return 0


if __name__ == "__main__":
    sys.exit(main())
