"""The code location loads the way users load it, and the README's main job works from a clean folder."""

from __future__ import annotations

import io
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from synapse_dagster.definitions import load_definitions
from synapse_dagster.config.loading import PipelineConfigError

REPO = Path(__file__).resolve().parents[2]


def test_repo_definitions_have_the_six_asset_lineage():
    defs = load_definitions(REPO / "pipelines.yaml")
    dg.Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    names = ["collection_specs", "source_inventory", "grouped_data_units", "validated_meta", "uploaded_files", "created_units"]
    keys = [dg.AssetKey(["chest_xray", n]) for n in names]
    for upstream, downstream in zip(keys, keys[1:]):
        assert upstream in graph.get(downstream).parent_keys
    assert all(graph.get(k).partitions_def.name == "chest_xray_batches" for k in keys)
    assert defs.resolve_job_def("chest_xray_ingest")


def test_bad_pipeline_file_fails_at_load_naming_the_field(tmp_path):
    (tmp_path / "p.yaml").write_text("pipelines:\n  - name: scans\n    data_collection: one\n    storage: 1\n    source: {path: .}\n")
    with pytest.raises(PipelineConfigError, match="pipeline 'scans', field 'data_collection': Input should be a valid integer"):
        load_definitions(tmp_path / "p.yaml")


@pytest.mark.parametrize(
    "command",
    [
        [sys.executable, "-m", "dagster", "definitions", "validate", "-w", "workspace.yaml"],
        [str(Path(sys.executable).parent / "dg"), "check", "defs"],
    ],
    ids=["dagster-definitions-validate", "dg-check-defs"],
)
def test_cli_loaders_accept_the_code_location(command):
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
