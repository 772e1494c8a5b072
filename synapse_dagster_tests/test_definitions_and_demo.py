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

REPO = Path(__file__).resolve().parents[1]


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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_demo_main_job_from_a_clean_folder(tmp_path, monkeypatch, capsys):
    from synapse_sandbox.demo import run_demo

    for name in ("pipelines.yaml", "dagster.yaml"):
        shutil.copy(REPO / name, tmp_path / name)
    for var in ("DAGSTER_HOME", "SYNAPSE_HOST", "SYNAPSE_ACCESS_TOKEN", "SYNAPSE_TENANT"):
        monkeypatch.setenv(var, "")  # recorded, so the demo's own os.environ changes are undone afterwards
        monkeypatch.delenv(var)
    assert run_demo(tmp_path, port=free_port()) == 0
    out = capsys.readouterr().out
    assert "data units created: 9; already existed: 0; failed: 0" in out
    assert "data units created: 0; already existed: 9; failed: 0" in out
    assert "held back P0010: file P0010/label.json (label_1) rejected by the SDK content guard" in out
    assert "The sandbox's data collection 1 now holds 9 data units." in out
    token = (tmp_path / ".synapse_dagster" / "sandbox_token").read_text()
    assert token not in out
    assert (tmp_path / ".synapse_dagster" / "dagster_home" / "dagster.yaml").is_file()
