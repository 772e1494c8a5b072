"""The code location loads the way users load it, and the README's main job works from a clean folder."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path



REPO = Path(__file__).resolve().parents[2]


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
    assert "not uploaded P0010/label.json: file P0010/label.json (label_1) rejected by the SDK content guard" in out
    assert "held back 2026-11-24_batch_001/P0010: file P0010/label.json (label_1) rejected by the SDK content guard" in out
    assert "The sandbox's data collection 1 now holds 9 data units." in out
    token = (tmp_path / ".synapse_dagster" / "sandbox_token").read_text()
    assert token not in out
    assert (tmp_path / ".synapse_dagster" / "dagster_home" / "dagster.yaml").is_file()
