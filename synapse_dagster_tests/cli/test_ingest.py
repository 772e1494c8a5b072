"""``synapse-dagster ingest`` tells a scheduler the truth: exit 0 only when every valid unit landed."""

from __future__ import annotations

import dagster as dg
import yaml

from synapse_dagster.cli.main import main as cli_main
from synapse_sandbox.demo_data import generate_batch


def test_ingest_exits_non_zero_when_units_did_not_land_and_zero_on_the_rerun(tmp_path, synapse_env, collection,
                                                                            capsys, monkeypatch):
    generate_batch(tmp_path / "incoming" / "b001", units=6, seed=8, image_size=8, defects=False)
    pipelines = tmp_path / "pipelines.yaml"
    pipelines.write_text(yaml.safe_dump({"pipelines": [{
        "name": "cli_run", "data_collection": collection, "storage": 1, "source": {"path": "./incoming"},
        "metadata": {"key_column": "patient_id"}}]}))
    monkeypatch.setenv("SYNAPSE_DAGSTER_STATE_DIR", str(tmp_path / "state"))
    with dg.instance_for_test():
        synapse_env.set_faults([{"match": {"method": "POST", "path": "^data_units/$"}, "action": "error", "status": 401}])
        try:
            code = cli_main(["ingest", "--pipelines", str(pipelines), "--pipeline", "cli_run", "--batch", "b001"])
        finally:
            synapse_env.set_faults([])
        out = capsys.readouterr().out
        assert code == 1
        assert "FAILED" in out and "data units created: 0; already existed: 0; failed: 6" in out
        assert "check all_valid_units_created (ERROR): 0 of 6 valid units exist; 6 did not make it" in out
        assert cli_main(["ingest", "--pipelines", str(pipelines), "--pipeline", "cli_run", "--batch", "b001"]) == 0
        out = capsys.readouterr().out
        assert "files uploaded    : 0 (0 bytes); already there: 12; failed: 0" in out
        assert "data units created: 6; already existed: 0; failed: 0" in out
    assert len(synapse_env.units(collection)) == 6
