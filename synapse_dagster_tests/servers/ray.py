"""A real local Ray cluster for the tests and the scaling benchmark: ``ray start --head`` on 127.0.0.1."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from synapse_dagster_tests.servers.common import free_port

# no Windows/macOS cluster guard, no token auth, no usage reporting: what a test cluster on 127.0.0.1 needs
RAY_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}


@contextlib.contextmanager
def ray_head(cpus: int, env: dict[str, str], temp: Path) -> Iterator[str]:
    """A head node with ``cpus`` CPUs (that many worker processes run tasks at once); its workers inherit ``env``
    (a real cluster's would get it from a secret). Yields the address for ``RAY_ADDRESS``. ``temp`` must be short:
    Ray's socket paths under it must fit in 107 bytes."""
    ray, port, env = Path(sys.executable).with_name("ray"), free_port(), {**env, **RAY_ENV}
    started = subprocess.run([str(ray), "start", "--head", "--port", str(port), "--node-ip-address", "127.0.0.1",
                              "--num-cpus", str(cpus), "--include-dashboard", "false", "--disable-usage-stats",
                              "--temp-dir", str(temp)], env=env, capture_output=True, text=True, timeout=300)
    if started.returncode != 0:
        raise RuntimeError(f"ray start failed: {(started.stdout + started.stderr).strip()[-2000:]}")
    try:
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([str(ray), "stop", "--force"], env=env, capture_output=True, timeout=120)
        shutil.rmtree(temp, ignore_errors=True)
