"""Files that are not what they were, or not what they say: each holds back its own unit, and the rest lands."""

from __future__ import annotations

import os

import pytest

from synapse_dagster_tests.bad_input.harness import GOOD, PNG, assert_clear, ingest, unit_files


def test_a_file_deleted_between_listing_and_planning(tmp_path, synapse_env, collection, batch):
    unit_files(batch / "P0006")
    landing = ingest(tmp_path, synapse_env, collection,
                     between=("grouped_data_units", lambda: (batch / "P0006" / "label.json").unlink()))
    assert_clear(landing, "P0006/label.json (label_1) no longer exists")


def test_a_file_deleted_between_planning_and_upload(tmp_path, synapse_env, collection, batch):
    unit_files(batch / "P0006")
    landing = ingest(tmp_path, synapse_env, collection,
                     between=("validated_meta", lambda: (batch / "P0006" / "scan.png").unlink()))
    assert_clear(landing, "P0006/scan.png", "no longer exists")


def test_a_file_that_grows_between_listing_and_planning(tmp_path, synapse_env, collection, batch):
    unit_files(batch / "P0006")
    grow = lambda: (batch / "P0006" / "scan.png").write_bytes(PNG + b"\0" * 100)  # noqa: E731
    landing = ingest(tmp_path, synapse_env, collection, between=("source_inventory", grow))
    assert_clear(landing, "P0006/scan.png (image_1) changed since it was listed")


def test_a_file_that_shrinks_between_planning_and_upload(tmp_path, synapse_env, collection, batch):
    unit_files(batch / "P0006", label='{"boxes": [1, 2, 3]}')
    shrink = lambda: (batch / "P0006" / "label.json").write_text("{}")  # noqa: E731
    landing = ingest(tmp_path, synapse_env, collection, between=("validated_meta", shrink))
    assert_clear(landing, "label.json", "changed since it was listed")


def test_a_file_rewritten_with_the_same_size_between_listing_and_planning(tmp_path, synapse_env, collection, batch):
    unit_files(batch / "P0006", label='{"a": 1}')

    def rewrite():
        path = batch / "P0006" / "label.json"
        path.write_text('{"a": 2}')
        os.utime(path, ns=(1, 1))

    landing = ingest(tmp_path, synapse_env, collection, between=("source_inventory", rewrite))
    assert_clear(landing, "P0006/label.json (label_1) was modified since it was listed")


def test_a_file_replaced_by_a_fifo_between_listing_and_planning(tmp_path, synapse_env, collection, batch):
    unit_files(batch / "P0006")

    def swap():
        (batch / "P0006" / "label.json").unlink()
        os.mkfifo(batch / "P0006" / "label.json")

    landing = ingest(tmp_path, synapse_env, collection, between=("source_inventory", swap))
    assert_clear(landing, "P0006/label.json (label_1)", "no longer a regular file")


def test_a_fifo_in_the_batch_is_refused_without_blocking(tmp_path, synapse_env, collection, batch):
    unit_files(batch / "P0006")
    (batch / "P0006" / "label.json").unlink()
    os.mkfifo(batch / "P0006" / "label.json")
    landing = ingest(tmp_path, synapse_env, collection)
    assert_clear(landing, "P0006/label.json", "is not a regular file (a FIFO, socket or device)")


@pytest.mark.parametrize("label, finding", [
    ("", "is empty (0 bytes)"),
    ("{not json", "is not valid JSON"),
    ("[" * 100_000, "is not valid JSON"),
    ("\ufeff{\"ok\": true", "is not valid JSON"),
])
def test_a_label_that_does_not_parse_holds_its_unit_back(tmp_path, synapse_env, collection, batch, label, finding):
    unit_files(batch / "P0006", label=label)
    landing = ingest(tmp_path, synapse_env, collection)
    assert_clear(landing, f"P0006/label.json (label_1) {finding}", "content_policy.required: warn")


def test_a_yaml_label_that_does_not_parse(tmp_path, synapse_env, collection, batch):
    (batch / "P0006").mkdir()
    (batch / "P0006" / "scan.png").write_bytes(PNG)
    (batch / "P0006" / "label.yaml").write_text("boxes: [1, 2\nnext: {")
    landing = ingest(tmp_path, synapse_env, collection)
    assert_clear(landing, "P0006/label.yaml (label_1) is not valid YAML")


def test_a_label_with_a_bom_is_valid_json(tmp_path, synapse_env, collection, batch):
    unit_files(batch / "P0006", label='\ufeff{"boxes": []}')
    landing = ingest(tmp_path, synapse_env, collection)
    assert_clear(landing, landed=(*GOOD, "P0006"))


def test_an_empty_required_file_uploads_with_a_warning_when_the_policy_says_warn(tmp_path, synapse_env, collection, batch):
    unit_files(batch / "P0006", label="")
    landing = ingest(tmp_path, synapse_env, collection, content_policy={"required": "warn"})
    assert_clear(landing, landed=(*GOOD, "P0006"))
    plan = landing.output("validated_meta")
    notes = next(u.notes for u in plan.units if u.group_key == "P0006")
    assert "file P0006/label.json (label_1) is empty (0 bytes); uploaded anyway (content_policy.required: warn)" in notes


@pytest.mark.parametrize("image, finding", [  # the SDK's content guard judges image formats first
    (b"\xff\xd8\xff\xe0" + b"\0" * 64, "TYPE_MISMATCH(png_is_jpeg)"),
    (b"\x00\x01\x02\x03" * 40, "TYPE_MISMATCH(png_is_unknown)"),
])
def test_an_image_whose_bytes_are_another_format(tmp_path, synapse_env, collection, batch, image, finding):
    unit_files(batch / "P0006", image=image)
    landing = ingest(tmp_path, synapse_env, collection)
    assert_clear(landing, "P0006/scan.png (image_1)", finding)


def test_an_html_page_saved_as_an_image_is_refused_by_the_content_guard(tmp_path, synapse_env, collection, batch):
    unit_files(batch / "P0006", image=b"<html><script>alert(1)</script></html>")
    landing = ingest(tmp_path, synapse_env, collection)
    assert_clear(landing, "P0006/scan.png (image_1) rejected by the SDK content guard")


def test_a_bad_optional_file_warns_by_default_and_its_unit_lands(tmp_path, synapse_env, collection, batch):
    unit_files(batch / "P0006")
    (batch / "P0006" / "extra.xml").write_text("<a><b></a>")
    landing = ingest(tmp_path, synapse_env, collection)
    note = "file P0006/extra.xml (extra) is not valid XML"
    assert_clear(landing, note, "uploaded anyway (content_policy.optional: warn)", landed=(*GOOD, "P0006"))
    assert any(n.startswith(note) for n in landing.output("uploaded_files").notes()), landing.report_lines()


def test_a_bad_optional_file_holds_back_when_the_policy_says_so(tmp_path, synapse_env, collection, batch):
    unit_files(batch / "P0006")
    (batch / "P0006" / "extra.xml").write_text("<a><b></a>")
    landing = ingest(tmp_path, synapse_env, collection, content_policy={"optional": "hold_back"})
    assert_clear(landing, "P0006/extra.xml (extra) is not valid XML")


def test_an_xml_entity_bomb_is_refused_in_bounded_time(tmp_path, synapse_env, collection, batch):
    unit_files(batch / "P0006")
    entities = "".join(f'<!ENTITY e{i} "{"&e%d;" % (i - 1) * 10}">' for i in range(1, 10))
    bomb = f'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY e0 "ha">{entities}]><a>&e9;</a>'
    (batch / "P0006" / "extra.xml").write_text(bomb)
    landing = ingest(tmp_path, synapse_env, collection, content_policy={"optional": "hold_back"})
    assert_clear(landing, "P0006/extra.xml (extra) is not valid XML")


def test_a_gif_named_extra_that_is_a_png(tmp_path, synapse_env, collection, batch):
    unit_files(batch / "P0006")
    (batch / "P0006" / "extra.gif").write_bytes(PNG)
    landing = ingest(tmp_path, synapse_env, collection, content_policy={"optional": "hold_back"})
    assert_clear(landing, "P0006/extra.gif (extra) rejected by the SDK content guard: TYPE_MISMATCH(gif_is_png)")


def test_a_file_over_the_size_limit(tmp_path, synapse_env, collection, batch):
    unit_files(batch / "P0006", image=PNG + b"\0" * (2 * 2**20))
    landing = ingest(tmp_path, synapse_env, collection, max_file_size_mb=1)
    assert_clear(landing, "P0006/scan.png (image_1) is 2.0 MiB, over the 1 MiB limit (max_file_size_mb)")


def test_a_unit_missing_its_label(tmp_path, synapse_env, collection, batch):
    (batch / "P0006").mkdir()
    (batch / "P0006" / "scan.png").write_bytes(PNG)
    landing = ingest(tmp_path, synapse_env, collection)
    assert_clear(landing, "P0006", "missing required spec 'label_1")


def test_two_labels_in_one_unit(tmp_path, synapse_env, collection, batch):
    unit_files(batch / "P0006")
    (batch / "P0006" / "label.yaml").write_text("boxes: []")
    landing = ingest(tmp_path, synapse_env, collection)
    assert_clear(landing, "2 files for spec 'label_1' (P0006/label.json, P0006/label.yaml)")


def test_system_junk_is_excluded_and_named(tmp_path, synapse_env, collection, batch):
    (batch / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (batch / "P0001" / "._scan.png").write_bytes(b"\0\5\26\7")
    (batch / "@eaDir").mkdir()
    (batch / "@eaDir" / "thumb.png").write_bytes(PNG)
    landing = ingest(tmp_path, synapse_env, collection)
    assert_clear(landing, "3 system files excluded")
