"""The code location loads the way users load it, and the README's main job works from a clean folder."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
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


def test_dg_list_defs_lists_the_lineage():
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    done = subprocess.run([str(Path(sys.executable).parent / "dg"), "list", "defs", "--json"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    listed = json.loads(done.stdout[done.stdout.index("{"):])
    keys = {asset["asset_key"] for asset in listed["assets"]}
    assert {"chest_xray/collection_specs", "chest_xray/created_units"} <= keys
    assert [s["name"] for s in listed["sensors"]] == ["chest_xray_new_batches"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize(
    "command",
    [["dg", "dev"], ["dagster", "dev", "-w", "workspace.yaml"]],
    ids=["dg-dev", "dagster-dev"],
)
def test_dev_servers_name_the_code_location_synapse_dagster(command, tmp_path):
    """Sensor cursors and run history are keyed by location name: both dev servers must use the same one."""
    port = free_port()
    (tmp_path / "dagster.yaml").write_text("telemetry: {enabled: false}\nnux: {enabled: false}\n")
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}
    binary = str(Path(sys.executable).parent / command[0])
    process = subprocess.Popen([binary, *command[1:], "-h", "127.0.0.1", "-p", str(port)], cwd=REPO, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        names = _location_names(port, deadline=time.monotonic() + 120)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
    assert names == [("synapse_dagster", "LOADED")]


def _location_names(port: int, deadline: float) -> list[tuple[str, str]]:
    query = json.dumps({"query": "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } } }"})
    while time.monotonic() < deadline:
        try:
            request = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", data=query.encode(),
                                             headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=5) as response:
                entries = json.loads(response.read())["data"]["workspaceOrError"]["locationEntries"]
            if entries and all(e["loadStatus"] == "LOADED" for e in entries):
                return [(e["name"], e["loadStatus"]) for e in entries]
        except (OSError, KeyError, TypeError, ValueError):
            pass
        time.sleep(0.5)
    raise AssertionError(f"no loaded code location on port {port} in time")
