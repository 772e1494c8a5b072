"""The Dagster UI as a person sees it: a real dagster-webserver, rendered by headless Chromium.

After one batch has run, the lineage page must show the six assets and the validated_meta page the
plan and the held-back units. Needs Debian's ``chromium`` (``.ci/run`` installs it); skipped without it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
import yaml

from synapse_dagster_tests.servers.dagster_ui import dagster_home, dagster_webserver
from synapse_sandbox.demo_data import generate_batch

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium not installed (apt-get install chromium)")
BATCH = "b001"


def render(url: str, profile: Path) -> str:
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               f"--user-data-dir={profile}", "--virtual-time-budget=15000", "--dump-dom", url]
    return subprocess.run(command, capture_output=True, text=True, timeout=90).stdout


def test_lineage_and_plan_render_in_the_dagster_ui(tmp_path, synapse_env, collection):
    generate_batch(tmp_path / "incoming" / BATCH, units=6, seed=2, image_size=8)
    config = {"name": "uiview", "data_collection": collection, "storage": 1, "source": {"path": "./incoming"},
              "metadata": {"key_column": "patient_id"}}
    pipelines = tmp_path / "pipelines.yaml"
    pipelines.write_text(yaml.safe_dump({"pipelines": [config]}))
    home = dagster_home(tmp_path / "dagster_home")
    env = {**os.environ, "DAGSTER_HOME": str(home), "SYNAPSE_DAGSTER_PIPELINES": str(pipelines),
           "SYNAPSE_DAGSTER_STATE_DIR": str(tmp_path / "state")}
    run = subprocess.run([sys.executable, "-m", "synapse_dagster.cli", "ingest", "--pipeline", "uiview", "--batch", BATCH],
                         env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    with dagster_webserver(env, tmp_path) as base:
        lineage = render(f"{base}/asset-groups/uiview", tmp_path / "chrome1")
        for name in ("collection_specs", "source_inventory", "grouped_data_units", "validated_meta", "uploaded_files",
                     "created_units"):
            assert name in lineage, f"{name} missing from the lineage page"
        page = render(f"{base}/assets/uiview/validated_meta?view=events", tmp_path / "chrome2")
        for text in ("invalid_report", "problems_by_kind", "Held back", "cannot be read as integer", f"{BATCH}/P0001"):
            assert text in page, f"{text!r} missing from the validated_meta page"
    with dg.instance_for_test(temp_dir=str(home)) as instance:  # the run the UI showed is really there
        assert len(instance.get_runs()) == 1
