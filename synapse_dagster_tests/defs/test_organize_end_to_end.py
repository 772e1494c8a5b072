"""Organization and metadata through Dagster, the real SDK client and the sandbox.

A type-separated batch (pattern 2, detected) whose meta comes from a file-name regex, a CSV sheet
and YAML sidecars must land with exactly typed meta; the dry run must show the same plan and write
nothing to Synapse.
"""

from __future__ import annotations

import random
from pathlib import Path

import dagster as dg
import pytest
import yaml

from synapse_dagster.cli.main import main as cli_main
from synapse_dagster.definitions import build_definitions
from synapse_sandbox.demo_data import png_bytes
from synapse_dagster.config.loading import parse_pipeline_file

BATCH = "2026-11-24T10"
PIPELINE = {
    "name": "typed",
    "storage": 1,
    "source": {"path": "./incoming"},
    "metadata": {
        "filename_regex": r"^(?P<patient_id>P\d{4})_(?P<age>\d+)_(?P<sex>[FM])",
        "sidecars": ["*.meta.yaml"],
        "static": {"site": "e2e"},
    },
}


@pytest.fixture
def typed_batch(tmp_path) -> Path:
    root = tmp_path / "incoming" / BATCH
    rng = random.Random(5)
    for stem in ["P0001_34_F", "P0002_51_M", "P0003_29_F", "P0004_62_M"]:
        (root / "images").mkdir(parents=True, exist_ok=True)
        (root / "images" / f"{stem}.png").write_bytes(png_bytes(12, 12, rng))
        if stem != "P0004_62_M":  # its label is missing: held back
            (root / "labels").mkdir(exist_ok=True)
            (root / "labels" / f"{stem}.json").write_text('{"finding": "none"}')
    (root / "labels" / "P0002_51_M.meta.yaml").write_text("has_finding: true\nscan_date: 2026-11-20\n")
    (root / "metadata.csv").write_text(
        "unit,scan_date,has_finding\n"
        "P0001_34_F,2026/11/03,no\n"
        "P0002_51_M,2026/11/04,no\n"
        "P0003_29_F,2026/11/05,maybe\n",  # 'maybe' is no boolean: held back
        encoding="utf-8",
    )
    return root


def pipeline_defs(tmp_path: Path, collection: int) -> dg.Definitions:
    config = {**PIPELINE, "data_collection": collection}
    (tmp_path / "pipelines.yaml").write_text(yaml.safe_dump({"pipelines": [config]}))
    return build_definitions(parse_pipeline_file({"pipelines": [config]}), base_dir=tmp_path, state_dir=tmp_path / "state")


def test_type_separated_batch_lands_with_typed_meta_from_regex_csv_and_sidecars(tmp_path, synapse_env, collection, typed_batch):
    defs = pipeline_defs(tmp_path, collection)
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("typed_batches", [BATCH])
        result = defs.resolve_job_def("typed_ingest").execute_in_process(instance=instance, partition_key=BATCH)
    assert result.success
    grouping = result.output_for_node("typed__grouped_data_units")
    assert grouping.detection.pattern.value == "type_separated" and grouping.detection.detected
    metas = {u["meta"]["patient_id"]: u["meta"] for u in synapse_env.units(collection)}
    assert metas == {
        "P0001": {"site": "e2e", "patient_id": "P0001", "age": 34, "sex": "F", "unit": "P0001_34_F",
                  "scan_date": "2026-11-03", "has_finding": False, "dataset_key": f"{BATCH}/P0001_34_F"},
        "P0002": {"site": "e2e", "patient_id": "P0002", "age": 51, "sex": "M", "unit": "P0002_51_M",
                  "scan_date": "2026-11-20", "has_finding": True, "dataset_key": f"{BATCH}/P0002_51_M"},
    }
    plan = result.output_for_node("typed__validated_meta")
    units = {u.group_key: u for u in plan.units}
    assert units["P0002_51_M"].provenance["has_finding"] == "sidecar labels/P0002_51_M.meta.yaml"
    assert [p.kind for p in units["P0003_29_F"].problems] == ["invalid_meta"]
    assert "'maybe' (from sheet metadata.csv) cannot be read as boolean" in units["P0003_29_F"].problems[0]
    assert [p.kind for p in units["P0004_62_M"].problems] == ["missing_spec"]
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert checks["batch_is_uploadable"] and not checks["meta_valid"] and checks["unsafe_files_excluded"]


def test_dry_run_prints_the_plan_and_writes_nothing(tmp_path, synapse_env, collection, typed_batch, capsys, monkeypatch):
    pipeline_defs(tmp_path, collection)
    monkeypatch.setenv("SYNAPSE_DAGSTER_STATE_DIR", str(tmp_path / "state"))
    before = synapse_env.stats()["requests"]
    code = cli_main(["plan", "--pipelines", str(tmp_path / "pipelines.yaml"), "--pipeline", "typed", "--batch", BATCH,
                     "--out", str(tmp_path / "plan.md")])
    out = capsys.readouterr().out
    assert code == 0
    writes = {route: n - before.get(route, 0) for route, n in synapse_env.stats()["requests"].items()
              if not route.startswith("GET") and n != before.get(route, 0)}
    assert writes == {} and synapse_env.units(collection) == []
    assert "**Pattern:** type_separated (pattern 2), detected from a sample" in out
    assert "| has_finding | `True` | sidecar labels/P0002_51_M.meta.yaml |" in out
    assert "problem (missing_spec): missing required spec 'label_1 (.json)'" in out
    assert "**Units:** 4 (2 ready, 2 held back)" in out
    assert (tmp_path / "plan.md").read_text() in out
