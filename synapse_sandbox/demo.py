"""The main job, end to end on embedded defaults: sample data, the local Synapse sandbox, SQLite Dagster.

``synapse-sandbox demo`` (what ``scripts/demo`` runs) generates the sample batch once,
starts (or reuses) the sandbox, materializes the whole graph for the batch through the real
``BackendClient``, runs the batch a second time to show nothing is duplicated, and prints a report.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from synapse_sandbox.demo_data import DEMO_BATCH, DEMO_COLLECTION_ID, demo_seed, generate_batch

DEFAULT_SANDBOX_PORT = 8765
PIPELINE_NAME = "chest_xray"


@dataclass(frozen=True)
class DemoPaths:
    root: Path  # the folder holding pipelines.yaml and dagster.yaml

    @property
    def home(self) -> Path:
        return self.root / ".synapse_dagster"

    @property
    def incoming(self) -> Path:
        return self.home / "demo" / "incoming"

    @property
    def sandbox_dir(self) -> Path:
        return self.home / "sandbox"

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster_home"

    @property
    def token_file(self) -> Path:
        return self.home / "sandbox_token"


def sandbox_token(paths: DemoPaths) -> str:
    """The sandbox's token, made once and kept private (0600) so the UI command can reuse it."""
    paths.home.mkdir(parents=True, exist_ok=True)
    if paths.token_file.is_file():
        return paths.token_file.read_text(encoding="utf-8").strip()
    token = secrets.token_urlsafe(24)
    fd = os.open(paths.token_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(token)
    return token


def prepare_dagster_home(paths: DemoPaths) -> Path:
    home = Path(os.environ.get("DAGSTER_HOME") or paths.dagster_home)
    home.mkdir(parents=True, exist_ok=True)
    template = paths.root / "dagster.yaml"
    if template.is_file() and not (home / "dagster.yaml").exists():
        shutil.copy(template, home / "dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(home)
    return home


@contextlib.contextmanager
def running_sandbox(paths: DemoPaths, token: str, port: int) -> Iterator[str]:
    """Start the sandbox on ``port`` as a subprocess, or reuse the one already serving this data dir."""
    from synapse_sandbox.server import start_sandbox_process

    paths.sandbox_dir.mkdir(parents=True, exist_ok=True)
    seed_file = paths.home / "sandbox_seed.json"
    seed_file.write_text(json.dumps(demo_seed(str(paths.sandbox_dir / "storage")), indent=2), encoding="utf-8")
    reused = _running_sandbox_url(paths, port)
    if reused:
        yield reused
        return
    with start_sandbox_process(paths.sandbox_dir, token, port=port, seed=seed_file) as process:
        yield process.url


def _running_sandbox_url(paths: DemoPaths, port: int) -> str | None:
    import urllib.request

    url = f"http://127.0.0.1:{port}"
    try:
        with urllib.request.urlopen(f"{url}/_sandbox/health", timeout=1) as response:
            info = json.loads(response.read() or b"{}")
    except (OSError, ValueError):
        return None
    if Path(str(info.get("data_dir", ""))).resolve() != paths.sandbox_dir.resolve():
        raise SystemExit(
            f"port {port} is taken by another Synapse sandbox or service; set SYNAPSE_SANDBOX_PORT to a free port"
        )
    return url


def run_demo(root: Path, *, port: int | None = None) -> int:
    from synapse_sdk.clients.backend import BackendClient

    from synapse_dagster.cli.report import print_report
    from synapse_dagster.cli.runs import run_batch

    paths = DemoPaths(root.resolve())
    pipeline_file = paths.root / "pipelines.yaml"
    batch_dir = paths.incoming / DEMO_BATCH
    if not batch_dir.is_dir():
        generate_batch(batch_dir)
        print(f"sample batch written to {batch_dir}")
    else:
        print(f"sample batch already at {batch_dir} (delete .synapse_dagster/ to start over)")
    token = sandbox_token(paths)
    prepare_dagster_home(paths)
    port = port or int(os.environ.get("SYNAPSE_SANDBOX_PORT", DEFAULT_SANDBOX_PORT))
    with running_sandbox(paths, token, port) as url:
        os.environ["SYNAPSE_HOST"] = url
        os.environ["SYNAPSE_ACCESS_TOKEN"] = token
        os.environ.pop("SYNAPSE_TENANT", None)
        print(f"Synapse sandbox at {url} (state in {paths.sandbox_dir})")
        first = run_batch(pipeline_file, DEMO_BATCH, pipeline=PIPELINE_NAME)
        print_report(first, PIPELINE_NAME, title=f"batch {DEMO_BATCH}, first run")
        second = run_batch(pipeline_file, DEMO_BATCH, pipeline=PIPELINE_NAME)
        again = print_report(second, PIPELINE_NAME, title=f"batch {DEMO_BATCH}, run again (must create nothing new)")
        client = BackendClient(base_url=url, access_token=token)
        in_sandbox = client.list_data_units(params={"data_collection": DEMO_COLLECTION_ID, "page_size": 1})["count"]
    print(f"\nThe sandbox's data collection {DEMO_COLLECTION_ID} now holds {in_sandbox} data units.")
    print("Browse the runs and the lineage graph: scripts/ui  (then open http://127.0.0.1:3000)")
    ok = first.success and second.success and again.get("created", 1) == 0 and again.get("uploaded", 1) == 0
    return 0 if ok else 1
