"""The whole graph for a batch, through Dagster, the real SDK client and the sandbox over HTTP.

Assertions are on what landed in the sandbox: units, their meta with types, and the stored bytes.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
import urllib.request
from pathlib import Path

import dagster as dg
import pytest
import yaml

from synapse_dagster.definitions import build_definitions
from synapse_dagster.defs.resources import SynapseResource
from synapse_sandbox.demo_data import generate_batch
from synapse_dagster.config.loading import parse_pipeline_file

BATCH = "b001"


def make_pipeline(tmp_path: Path, collection: int, **overrides) -> tuple[dg.Definitions, Path]:
    config = {
        "name": "xray",
        "data_collection": collection,
        "storage": 1,
        "source": {"path": "./incoming"},
        "metadata": {"key_column": "patient_id", "static": {"site": "test-site"}},
        "creating_data_unit_batch_size": 4,
        **overrides,
    }
    (tmp_path / "pipelines.yaml").write_text(yaml.safe_dump({"pipelines": [config]}))
    pipelines = parse_pipeline_file({"pipelines": [config]})
    state_dir = tmp_path / "state"
    return build_definitions(pipelines, base_dir=tmp_path, state_dir=state_dir), state_dir


def run(defs: dg.Definitions, instance: dg.DagsterInstance, batch: str = BATCH,
        read_timeout_s: int | None = None) -> dg.ExecuteInProcessResult:
    """Run the batch; ``read_timeout_s`` gives the Synapse client and the uploads short timeouts (for the
    timeout faults)."""
    if not instance.has_dynamic_partition("xray_batches", batch):
        instance.add_dynamic_partitions("xray_batches", [batch])
    resources = None if read_timeout_s is None else {
        "synapse": SynapseResource(read_timeout_s=read_timeout_s, upload_timeout_s=read_timeout_s)}
    return defs.resolve_job_def("xray_ingest").execute_in_process(instance=instance, partition_key=batch,
                                                                  raise_on_error=False, resources=resources)


def sha1(path: Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()


def download(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read()


@pytest.fixture
def batch(tmp_path) -> dict:
    return generate_batch(tmp_path / "incoming" / BATCH, units=8, seed=3, image_size=32)


def test_batch_lands_in_the_collection_with_typed_meta_and_exact_bytes(tmp_path, synapse_env, collection, batch):
    defs, _ = make_pipeline(tmp_path, collection)
    with dg.instance_for_test() as instance:
        result = run(defs, instance)
    assert result.success
    units = synapse_env.units(collection)
    by_pid = {u["meta"]["patient_id"]: u for u in units}
    assert sorted(by_pid) == sorted(batch["valid"]) and len(units) == len(batch["valid"]) == 5
    for pid, unit in by_pid.items():
        meta = unit["meta"]
        assert meta["dataset_key"] == f"{BATCH}/{pid}"
        assert type(meta["age"]) is int and type(meta["has_finding"]) is bool
        assert meta["site"] == "test-site" and meta["scan_date"].startswith("2026-11-")
        for spec, name in (("image_1", "scan.png"), ("label_1", "label.json")):
            source = tmp_path / "incoming" / BATCH / pid / name
            assert unit["files"][spec]["checksum"] == sha1(source)
            assert download(unit["files"][spec]["url"]) == source.read_bytes()
    # The held-back units never reached the sandbox, and the report says why: the plan holds back what the
    # listing and the meta show; the file with a script is found when it is read, once, for its upload.
    plan = result.output_for_node("xray__validated_meta")
    reasons = {u.group_key: " ".join(u.problems) for u in plan.invalid_units}
    assert set(reasons) == set(batch["invalid"]) - {"P0006"}
    assert "cannot be read as integer" in reasons["P0007"] and "missing required spec 'label_1" in reasons["P0008"]
    held = dict(result.asset_value(["xray", "created_units"]).held_back)
    assert list(held) == [f"{BATCH}/P0006"] and "SCRIPT_INJECTION" in " ".join(held[f"{BATCH}/P0006"])
    checks = {c.check_name: (c.passed, c.severity.value) for c in result.get_asset_check_evaluations()}
    # One unit per gate is quarantined: the gates warn, and the batch (2 of 8 held back, limit 50%) goes on.
    assert checks == {
        "required_specs_satisfied": (False, "WARN"),
        "meta_valid": (False, "WARN"),
        "unsafe_files_excluded": (True, "ERROR"),
        "files_readable_and_well_formed": (True, "ERROR"),
        "batch_is_uploadable": (True, "ERROR"),
        "all_valid_units_created": (True, "ERROR"),
    }


def test_rematerializing_creates_nothing_and_uploads_nothing(tmp_path, synapse_env, collection, batch):
    defs, _ = make_pipeline(tmp_path, collection)
    with dg.instance_for_test() as instance:
        assert run(defs, instance).success
        first = {u["id"] for u in synapse_env.units(collection)}
        uploads_before = _presigned_requests(synapse_env)
        again = run(defs, instance)
    assert again.success
    assert {u["id"] for u in synapse_env.units(collection)} == first
    created = again.asset_value(["xray", "created_units"])
    assert [o.status for o in created.outcomes.values()] == ["existing"] * len(first)
    assert not created.reconciled and created.requests_sent == 0
    assert _presigned_requests(synapse_env) == uploads_before


def test_lost_ledger_reconciles_with_the_server_instead_of_duplicating(tmp_path, synapse_env, collection, batch):
    defs, state_dir = make_pipeline(tmp_path, collection)
    with dg.instance_for_test() as instance:
        assert run(defs, instance).success
        before = sorted(u["id"] for u in synapse_env.units(collection))
        shutil.rmtree(state_dir)
        again = run(defs, instance)
    assert again.success
    assert sorted(u["id"] for u in synapse_env.units(collection)) == before
    assert again.asset_value(["xray", "created_units"]).reconciled


def test_mostly_invalid_batch_is_blocked_before_upload(tmp_path, synapse_env, collection, batch):
    defs, _ = make_pipeline(tmp_path, collection, max_invalid_fraction=0.2)
    with dg.instance_for_test() as instance:
        result = run(defs, instance)
    assert not result.success
    checks = {c.check_name: (c.passed, c.severity.value) for c in result.get_asset_check_evaluations()}
    assert checks["batch_is_uploadable"] == (False, "ERROR")  # 2 of 8 held back, over the 20% limit: blocked
    assert checks["meta_valid"] == (False, "WARN")  # 1 of 8 on its own would not block
    assert "all_valid_units_created" not in checks
    executed = {e.step_key for e in result.all_events if e.event_type_value == "STEP_SUCCESS"}
    assert "xray__delivery" not in executed  # the step of uploaded_files and created_units
    assert synapse_env.units(collection) == []


def test_wrong_token_fails_clearly_without_leaking_it(tmp_path, synapse_env, collection, batch, monkeypatch):
    monkeypatch.setenv("SYNAPSE_ACCESS_TOKEN", "wrong-token-value-123")
    defs, _ = make_pipeline(tmp_path, collection)
    with dg.instance_for_test() as instance:
        result = run(defs, instance)
        logs = "\n".join(str(e.message) for e in instance.all_logs(result.run_id))
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "rejected the access token (401)" in failure.event_specific_data.error.message
    assert "wrong-token-value-123" not in logs


def _presigned_requests(sandbox) -> int:
    stats = sandbox.stats()
    return sum(count for route, count in _flatten(stats) if "presigned_upload/upload" in route)


def _flatten(stats) -> list[tuple[str, int]]:
    if isinstance(stats, dict):
        items = stats.get("requests", stats)
        return [(str(k), int(v)) for k, v in items.items() if isinstance(v, int)]
    return []


def test_runs_report_throughput_and_lag_as_numbers_dagster_plots(tmp_path, synapse_env, collection, batch):
    """files/s and MiB/s of the upload, and the lag behind the batch's newest file, as numeric metadata."""
    hour_ago = time.time() - 3600
    for path in (tmp_path / "incoming" / BATCH).rglob("*"):
        os.utime(path, (hour_ago, hour_ago))
    newest = tmp_path / "incoming" / BATCH / batch["valid"][0] / "scan.png"
    os.utime(newest, (hour_ago + 600, hour_ago + 600))  # 50 minutes old: the lag is measured from this one
    defs, _ = make_pipeline(tmp_path, collection)
    with dg.instance_for_test() as instance:
        assert run(defs, instance).success
        def latest(name: str) -> dict:
            event = instance.get_latest_materialization_event(dg.AssetKey(["xray", name]))
            return event.asset_materialization.metadata
        listed, uploaded, created = latest("source_inventory"), latest("uploaded_files"), latest("created_units")
    assert listed["newest_file"].value == pytest.approx(hour_ago + 600, abs=1)
    assert isinstance(created["lag_seconds"], dg.FloatMetadataValue)
    assert 3000 <= created["lag_seconds"].value < 3000 + 300
    assert created["newest_file_delivered"].value == pytest.approx(hour_ago + 600, abs=1)
    for name in ("files_per_second", "mib_per_second"):
        assert isinstance(uploaded[name], dg.FloatMetadataValue) and uploaded[name].value > 0, name
    assert uploaded["uploaded"].value >= 10  # 5 valid units, two files each (and a file of the unit held back once staged)


def test_a_batch_tells_its_story_in_the_ui_report_charts_owners_and_tags(tmp_path, synapse_env, collection, batch):
    """The batch report on created_units agrees with what landed in the sandbox; the inventory and the plan carry
    bar charts (SVG images in markdown) of what they counted; owners, tags and descriptions come from the file."""
    defs, _ = make_pipeline(tmp_path, collection, owners=["team:ml-data", "ana@example.org"],
                            tags={"domain": "radiology", "cost.center": "cc-42"},
                            description="Nightly chest X-ray drops.")
    with dg.instance_for_test() as instance:
        assert run(defs, instance).success
        def latest(name: str) -> dict:
            return instance.get_latest_materialization_event(dg.AssetKey(["xray", name])).asset_materialization.metadata
        listed, planned, created = latest("source_inventory"), latest("validated_meta"), latest("created_units")
        run_tags = instance.get_runs()[0].tags
    units = synapse_env.units(collection)
    report = created["batch_report"].value
    assert f"| units created | {len(units)} |" in report and "| units held back | 3 |" in report
    sample = units[0]
    assert f"| `{sample['meta']['dataset_key']}` | {sample['id']} | image_1: scan.png, label_1: label.json |" in report
    assert f"data_collections/{collection}/" in report and "Why units were held back" in report
    assert f"{BATCH}/P0006" in report  # the unit the content guard held back at upload, with its reason
    for metadata, name, labels in ((listed, "files_per_extension_chart", (".png", ".json", ".xlsx")),
                                   (planned, "units_chart", ("valid", "missing_spec"))):
        svg = svg_of(metadata[name].value)
        texts = [t.text for t in svg.iter("{http://www.w3.org/2000/svg}text")]
        assert all(label in texts for label in labels), texts
    chart_texts = [t.text for t in svg_of(planned["units_chart"].value).iter("{http://www.w3.org/2000/svg}text")]
    assert chart_texts[chart_texts.index("valid") + 1] == str(planned["valid_units"].value) == "6"  # the bar's count
    specs = {spec.key.path[-1]: spec for spec in defs.resolve_all_asset_specs()}
    assert len(specs) == 6
    for name, spec in specs.items():
        assert spec.owners == ["team:ml-data", "ana@example.org"], name
        assert spec.tags["domain"] == "radiology" and spec.tags["cost.center"] == "cc-42", name
        assert spec.description.startswith("Nightly chest X-ray drops.\n\n"), name
    assert "'./incoming'" in specs["source_inventory"].description
    assert f"storage 1 through presigned URLs, 16 at a time" in specs["uploaded_files"].description
    assert run_tags["domain"] == "radiology" and run_tags["synapse/pipeline"] == "xray"


def svg_of(markdown: str):
    """The SVG a chart's markdown image holds, parsed (so it is well-formed XML)."""
    import base64
    import re
    import xml.etree.ElementTree as ET

    found = re.fullmatch(r"!\[[^\]]*\]\(data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)\)", markdown)
    assert found, markdown[:200]
    return ET.fromstring(base64.b64decode(found.group(1)))
