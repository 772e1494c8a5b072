"""A real Dagster UI for the browser tests: a Dagster home, a dagster-webserver on a free port, and the wait for it.

The webserver runs in its own session, so stopping it ends its code server and the runs it launched too.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path

from synapse_dagster_tests.servers.common import free_port

QUIET = "telemetry: {enabled: false}\nnux: {enabled: false}\n"
# Runs launched from the UI start at once, in a process of the code server: no daemon, no queue to wait on.
RUN_NOW = "run_coordinator: {module: dagster.core.run_coordinator, class: DefaultRunCoordinator}\n"


def dagster_home(path: Path, *, run_now: bool = False) -> Path:
    """A Dagster home with telemetry and the first-visit tour off; ``run_now`` lets the UI launch runs without
    the daemon (see :data:`RUN_NOW`)."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "dagster.yaml").write_text(QUIET + (RUN_NOW if run_now else ""))
    return path


@contextlib.contextmanager
def dagster_webserver(env: Mapping[str, str], cwd: Path, *, log: Path | None = None,
                      timeout: float = 120) -> Iterator[str]:
    """dagster-webserver on ``synapse_dagster.definitions``; yields its base URL once it answers, stops it after."""
    port = free_port()
    command = [sys.executable, "-m", "dagster_webserver", "-h", "127.0.0.1", "-p", str(port),
               "-m", "synapse_dagster.definitions"]
    with open(log or os.devnull, "ab") as out:
        server = subprocess.Popen(command, env=dict(env), cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_answering(f"{base}/server_info", server, timeout)
        yield base
    finally:
        stop_group(server)


def wait_until_answering(url: str, server: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"dagster-webserver exited with {server.returncode} before answering")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"dagster-webserver did not answer {url} within {timeout:.0f} s")


def stop_group(process: subprocess.Popen, grace: float = 30) -> None:
    """SIGTERM the process group (webserver, code server, run workers), SIGKILL what outlives the grace."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # run workers of a run still going ignore SIGTERM's grace
    process.wait(timeout=10)
