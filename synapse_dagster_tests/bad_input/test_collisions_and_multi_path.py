"""A unit whose dataset_key is taken by other content is never silent; multi-path units join by stem at any depth."""

from __future__ import annotations

import pytest

from synapse_dagster_tests.bad_input.harness import (
    GOOD, PNG, assert_clear, good_batch, ingest, sheet_rows, unit_files)


def two_batches(tmp_path, sandbox, collection, **config):
    """b0 delivers P0006; b1 brings five new units and a P0006 with another label, under the same key."""
    root = tmp_path / "incoming"
    unit_files(root / "b0" / "P0006", label='{"boxes": [1]}')
    (root / "b0" / "meta.csv").write_text(sheet_rows(["P0006"]))
    first = ingest(tmp_path, sandbox, collection, batch="b0", dataset_key_template="{group_key}", **config)
    assert first.success and first.keys == {"P0006"}
    batch = good_batch(root)
    unit_files(batch / "P0006", label='{"boxes": [2]}')
    existing = next(u["id"] for u in first.units)
    return ingest(tmp_path, sandbox, collection, dataset_key_template="{group_key}", **config), existing


def test_a_key_taken_by_another_batch_is_skipped_and_named(tmp_path, synapse_env, collection):
    landing, existing = two_batches(tmp_path, synapse_env, collection)
    assert_clear(landing, f"dataset_key 'P0006' already exists as unit {existing} (from batch 'b0') with other files "
                 "or meta; skipped (on_dataset_key_collision: skip)", landed=(*GOOD, "P0006"))
    assert landing.success and len(landing.units) == 6  # the old unit, untouched, and five new ones
    old = next(u for u in landing.units if u["id"] == existing)
    assert old["meta"]["dataset_key"] == "P0006"


def test_with_fail_a_taken_key_fails_the_run_and_creates_nothing(tmp_path, synapse_env, collection):
    landing, existing = two_batches(tmp_path, synapse_env, collection, on_dataset_key_collision="fail")
    assert_clear(landing, f"already exists as unit {existing} (from batch 'b0')", "the run fails",
                 landed=("P0006",))
    assert not landing.success


def test_with_new_version_a_taken_key_gets_a_new_version_pointing_at_the_old_unit(tmp_path, synapse_env, collection):
    landing, existing = two_batches(tmp_path, synapse_env, collection, on_dataset_key_collision="new_version")
    assert_clear(landing, "P0006 exists with other content: added as P0006#v2", landed=(*GOOD, "P0006"))
    version = next(u for u in landing.units if u["meta"]["dataset_key"] == "P0006#v2")
    assert version["meta"]["previous_version_unit_id"] == existing
    again = ingest(tmp_path, synapse_env, collection, dataset_key_template="{group_key}",
                   on_dataset_key_collision="new_version")
    assert again.success and len(again.units) == 7  # the re-run finds P0006#v2: nothing new


def test_the_same_unit_under_the_same_key_is_no_collision(tmp_path, synapse_env, collection):
    root = tmp_path / "incoming"
    batch = good_batch(root, extra_ids=())
    first = ingest(tmp_path, synapse_env, collection, dataset_key_template="{group_key}")
    (root / "b2").mkdir()
    for child in batch.iterdir():
        (root / "b2" / child.name).symlink_to(child, target_is_directory=child.is_dir())
    again = ingest(tmp_path, synapse_env, collection, batch="b2", dataset_key_template="{group_key}",
                   source={"path": "./incoming", "follow_symlinks": "always"})
    assert_clear(again)
    assert first.success and again.success and "collision" not in again.report_lines()
    assert sorted(u["id"] for u in again.units) == sorted(u["id"] for u in first.units)


def multi_path(tmp_path) -> dict:
    images, labels = tmp_path / "images" / "b1", tmp_path / "labels" / "b1"
    for number, pid in enumerate(GOOD):
        folder = images / ("2026" if number % 2 else "2025") / "scans"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{pid}.png").write_bytes(PNG)
        labels.mkdir(parents=True, exist_ok=True)
        (labels / f"{pid}.json").write_text("{}")
    (images / "meta.csv").write_text(sheet_rows([*GOOD, "P0006"]))
    return {"assets": {"image_1": {"path": "./images"}, "label_1": {"path": "./labels"}}, "pattern": "multi_path",
            "metadata": {"key_column": "patient_id", "excel_path": "meta.csv"}}


def test_multi_path_joins_by_stem_at_any_depth(tmp_path, synapse_env, collection):
    config = multi_path(tmp_path)
    landing = ingest(tmp_path, synapse_env, collection, source=None, **config)
    assert_clear(landing)
    assert landing.keys == {f"b1/{pid}" for pid in GOOD}


def test_multi_path_reports_the_same_stem_twice_in_one_source(tmp_path, synapse_env, collection):
    config = multi_path(tmp_path)
    for year in ("2025", "2026"):
        (tmp_path / "images" / "b1" / year / f"P0006.png").write_bytes(PNG)
    (tmp_path / "labels" / "b1" / "P0006.json").write_text("{}")
    landing = ingest(tmp_path, synapse_env, collection, source=None, **config)
    assert_clear(landing, "the same stem 'P0006' in two folders of the source of spec 'image_1'")
