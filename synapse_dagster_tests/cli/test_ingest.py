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


def test_units_that_failed_for_good_are_listed_and_replayed(tmp_path, synapse_env, collection, capsys, monkeypatch):
    """Units whose every create attempt got a 503 are dead letters (stage, status, attempts) until replayed."""
    generate_batch(tmp_path / "incoming" / "b001", units=6, seed=9, image_size=8, defects=False)
    pipelines = tmp_path / "pipelines.yaml"
    pipelines.write_text(yaml.safe_dump({"pipelines": [{
        "name": "letters", "data_collection": collection, "storage": 1, "source": {"path": "./incoming"},
        "metadata": {"key_column": "patient_id"}, "creating_data_unit_batch_size": 3}]}))
    monkeypatch.setenv("SYNAPSE_DAGSTER_STATE_DIR", str(tmp_path / "state"))
    args = ["--pipelines", str(pipelines), "--pipeline", "letters"]
    with dg.instance_for_test():
        synapse_env.set_faults([{"match": {"method": "POST", "path": "^data_units/$"}, "action": "error",
                                 "status": 503, "times": 40}])  # every attempt of the first chunks: retries run out
        try:
            assert cli_main(["ingest", *args, "--batch", "b001"]) == 1
        finally:
            synapse_env.set_faults([])
        capsys.readouterr()
        assert cli_main(["failed", *args]) == 0
        listed = capsys.readouterr().out
        assert "6 unit(s) failed for good; 'retry-failed' redoes just those" in listed
        assert "b001\tb001/P0001\tcreate\t503\t5\tnot created after 5 attempts" in listed
        assert cli_main(["retry-failed", *args]) == 0
        out = capsys.readouterr().out
        assert "data units created: 6; already existed: 0; failed: 0" in out and "0 unit(s) still failed" in out
        assert cli_main(["failed", *args, "--batch", "b001"]) == 0
        assert "0 unit(s) failed for good in batch b001" in capsys.readouterr().out
    assert len(synapse_env.units(collection)) == 6
