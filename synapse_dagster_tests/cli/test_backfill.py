"""Historical batches: register them from the command line, backfill a range, each batch its own run."""

from __future__ import annotations

import dagster as dg
import yaml

from synapse_dagster.cli.main import main as cli_main
from synapse_sandbox.demo_data import generate_batch


def test_register_then_backfill_a_range_without_duplicates(tmp_path, synapse_env, collection, capsys, monkeypatch):
    incoming = tmp_path / "incoming"
    for i, batch in enumerate(["2026-11-01", "2026-11-02", "2026-11-03"]):
        generate_batch(incoming / batch, units=2, seed=i, defects=False, image_size=8)
        if batch != "2026-11-03":
            (incoming / batch / "_READY").write_text("")
    config = {"name": "hist", "data_collection": collection, "storage": 1, "source": {"path": "./incoming"},
              "batches": {"ready_marker": "_READY"}, "metadata": {"key_column": "patient_id"},
              "dataset_key_template": "{batch}/{group_key}"}
    pipelines = tmp_path / "pipelines.yaml"
    pipelines.write_text(yaml.safe_dump({"pipelines": [config]}))
    monkeypatch.setenv("SYNAPSE_DAGSTER_STATE_DIR", str(tmp_path / "state"))
    with dg.instance_for_test() as instance:
        assert cli_main(["batches", "--pipelines", str(pipelines), "--pipeline", "hist", "--register"]) == 0
        out = capsys.readouterr().out
        assert "2026-11-03\twaiting: no _READY marker yet" in out and "registered 2 new batch(es)" in out
        assert instance.get_dynamic_partitions("hist_batches") == ["2026-11-01", "2026-11-02"]
        assert cli_main(["backfill", "--pipelines", str(pipelines), "--pipeline", "hist", "--from", "2026-11-02"]) == 0
        assert "1 of 1 batches succeeded" in capsys.readouterr().out
        assert sorted(u["meta"]["dataset_key"] for u in synapse_env.units(collection)) == ["2026-11-02/P0001", "2026-11-02/P0002"]
        assert cli_main(["backfill", "--pipelines", str(pipelines), "--pipeline", "hist"]) == 0
        keys = sorted(u["meta"]["dataset_key"] for u in synapse_env.units(collection))
        assert keys == ["2026-11-01/P0001", "2026-11-01/P0002", "2026-11-02/P0001", "2026-11-02/P0002"]
        runs = instance.get_runs()
        assert len(runs) == 3 and {r.tags["dagster/partition"] for r in runs} == {"2026-11-01", "2026-11-02"}
