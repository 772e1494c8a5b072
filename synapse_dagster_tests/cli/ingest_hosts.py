"""Real ``synapse-dagster ingest`` processes, each with a working directory, a Dagster home and local state: what
the process tests (double launches, kills, several hosts) start and count."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import yaml
from dagster._core.instance.ref import InstanceRef

from synapse_sandbox.demo_data import generate_batch


def write_batch(folder: Path, units: int, seed: int, tag: str) -> None:
    """A batch of ``units`` units with bytes no other test writes (the sandbox is shared by the session, and a
    unit whose file's SHA1 is already there reuses that DataFile): the images come from the tag and the seed
    together, since two tests' seeds can meet."""
    generate_batch(folder, units=units, seed=zlib.crc32(f"{tag}-{seed}".encode()), image_size=32, defects=False)
    for label in folder.glob("*/label.json"):
        label.write_text(json.dumps({**json.loads(label.read_text()), "case": f"{tag}-{seed}"}))


@dataclass
class IngestHost:
    root: Path
    pipeline: str
    env: dict[str, str]

    def command(self, batch: str) -> list[str]:
        return [sys.executable, "-m", "synapse_dagster.cli", "ingest", "--pipelines", str(self.root / "pipelines.yaml"),
                "--pipeline", self.pipeline, "--batch", batch]

    def start(self, batch: str, **popen: Any) -> subprocess.Popen:
        popen = popen or {"stdout": subprocess.PIPE, "stderr": subprocess.STDOUT, "text": True}
        return subprocess.Popen(self.command(batch), env=self.env, cwd=self.root, **popen)

    def run(self, batch: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run(self.command(batch), env=self.env, cwd=self.root, capture_output=True, text=True,
                              timeout=timeout)

    def instance(self) -> dg.DagsterInstance:
        return dg.DagsterInstance.from_ref(InstanceRef.from_dir(self.env["DAGSTER_HOME"]))


def make_host(root: Path, *, pipeline: str, collection: int, source: dict[str, Any], pool_limit: int | None = None,
              env: dict[str, str] | None = None, **settings: Any) -> IngestHost:
    """A host folder with its pipeline file and Dagster home; the instance exists before any run, as it does where
    a daemon launches them (two processes creating one fresh SQLite instance race on its schema)."""
    home = root / "dagster_home"
    home.mkdir(parents=True)
    instance_yaml = {"telemetry": {"enabled": False}}
    if pool_limit is not None:
        instance_yaml["concurrency"] = {"pools": {"default_limit": pool_limit}}
    (home / "dagster.yaml").write_text(yaml.safe_dump(instance_yaml))
    with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home))) as instance:
        instance.get_runs(limit=1)
    (root / "pipelines.yaml").write_text(yaml.safe_dump({"pipelines": [{
        "name": pipeline, "data_collection": collection, "storage": 1, "source": source,
        "metadata": {"key_column": "patient_id"}, **settings}]}))
    full_env = {**os.environ, "DAGSTER_HOME": str(home), "SYNAPSE_DAGSTER_STATE_DIR": str(root / "state"), **(env or {})}
    return IngestHost(root, pipeline, full_env)


def reported(output: str, label: str) -> int:
    """The first number of the report line ``label`` (``data units created: 24; already existed: 0``)."""
    line = next(x for x in output.splitlines() if x.strip().startswith(label))
    return int(line.split(":")[1].split(";")[0].split("(")[0])
