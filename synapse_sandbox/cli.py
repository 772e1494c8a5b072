"""``scripts/cli``: any ``synapse-dagster`` command (``init``, ``doctor``, ``ingest`` …) against the local sandbox.

The sandbox is started (or the one ``scripts/ui`` runs is reused) and the command gets its host and token in the
environment and the demo's Dagster instance, so a newcomer can try ``init`` end to end without a Synapse account.
stdin stays the terminal's, so ``init`` asks its questions as it would against a real Synapse.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from synapse_sandbox.demo import DEFAULT_SANDBOX_PORT, DemoPaths, prepare_dagster_home, running_sandbox, sandbox_token


def main(argv: list[str]) -> int:
    paths = DemoPaths(Path(".").resolve())
    port = int(os.environ.get("SYNAPSE_SANDBOX_PORT", DEFAULT_SANDBOX_PORT))
    token = sandbox_token(paths)
    prepare_dagster_home(paths)
    with running_sandbox(paths, token, port) as url:
        env = dict(os.environ, SYNAPSE_HOST=url, SYNAPSE_ACCESS_TOKEN=token, SYNAPSE_DAGSTER_PROGRAM="scripts/cli")
        env.pop("SYNAPSE_TENANT", None)
        try:
            return subprocess.call([sys.executable, "-m", "synapse_dagster.cli", *argv], env=env)
        except KeyboardInterrupt:
            return 130
