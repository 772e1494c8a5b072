"""A file or folder the pipeline's user cannot read holds back only what it holds, and says so in one line.

Root reads a mode-000 file anyway, so under root the run drops the capabilities that let it
(``setpriv --inh-caps=-dac_override,-dac_read_search --bounding-set=…``): it then reads files as any user does.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from synapse_dagster_tests.bad_input.harness import GOOD, PIPELINE, good_batch, seed_collection, unit_files

REPO = Path(__file__).resolve().parents[2]
CAPS = "-dac_override,-dac_read_search"


def without_read_override() -> list[str]:
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        if os.environ.get("CI"):
            pytest.fail("setpriv (util-linux) is needed to drop root's read override")
        pytest.skip("setpriv (util-linux) is not installed")
    return ["setpriv", f"--inh-caps={CAPS}", f"--bounding-set={CAPS}"]


def test_an_unreadable_file_and_an_unlistable_folder_hold_back_only_their_units(tmp_path, synapse_env):
    collection = seed_collection(synapse_env)
    batch = good_batch(tmp_path / "incoming")
    unit_files(batch / "P0006")
    (batch / "P0006" / "label.json").chmod(0)
    unit_files(batch / "P0007")
    (batch / "P0007").chmod(0)
    pipeline = {"name": PIPELINE, "data_collection": collection, "storage": 1, "source": {"path": "./incoming"},
                "pattern": "nested", "metadata": {"key_column": "patient_id"}}
    (tmp_path / "pipelines.yaml").write_text(yaml.safe_dump({"pipelines": [pipeline]}))
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "dagster.yaml").write_text("telemetry: {enabled: false}\n")
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("SYNAPSE_")},
           "SYNAPSE_HOST": synapse_env.url, "SYNAPSE_ACCESS_TOKEN": synapse_env.token, "HOME": str(tmp_path),
           "DAGSTER_HOME": str(tmp_path / "home"), "PYTHONPATH": str(REPO)}
    command = [*without_read_override(), sys.executable, "-m", "synapse_dagster.cli", "ingest", "--pipeline", PIPELINE,
               "--batch", "b1"]
    try:
        done = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    finally:
        (batch / "P0007").chmod(0o755)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "P0006/label.json (label_1) cannot be read: permission denied" in output
    assert "P0007: is a folder that cannot be listed (Permission denied)" in output
    assert "Traceback" not in output and "Stack Trace" not in output
    assert {u["meta"]["patient_id"] for u in synapse_env.units(collection)} == set(GOOD)
