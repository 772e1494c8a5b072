"""Names and links a filesystem or an object store can produce: nothing outside a source is read, a name that is
not a usable path is refused, and each is named in the report while the rest of the batch lands."""

from __future__ import annotations

import os
import unicodedata

import pytest

from synapse_dagster_tests.bad_input.harness import (
    BATCH, GOOD, PNG, assert_clear, ingest, sheet_rows, unit_files)


@pytest.fixture
def outside(tmp_path):
    """Files elsewhere on the machine that must never be uploaded."""
    folder = tmp_path / "elsewhere"
    unit_files(folder / "P0006", label='{"secret": "from outside the source"}')
    return folder


def test_a_link_to_a_file_outside_the_source_is_refused(tmp_path, synapse_env, collection, batch, outside):
    (batch / "P0006").mkdir()
    (batch / "P0006" / "scan.png").write_bytes(PNG)
    (batch / "P0006" / "label.json").symlink_to(outside / "P0006" / "label.json")
    landing = ingest(tmp_path, synapse_env, collection)
    assert_clear(landing, "P0006/label.json", "is a symbolic link to", "outside the source folder")


def test_a_link_to_a_folder_outside_the_source_is_refused(tmp_path, synapse_env, collection, batch, outside):
    (batch / "P0006").symlink_to(outside / "P0006", target_is_directory=True)
    landing = ingest(tmp_path, synapse_env, collection)
    assert_clear(landing, "P0006: is a symbolic link to", "outside the source folder")


def test_with_follow_symlinks_always_a_link_outside_is_followed(tmp_path, synapse_env, collection, batch, outside):
    (batch / "P0006").symlink_to(outside / "P0006", target_is_directory=True)
    landing = ingest(tmp_path, synapse_env, collection, source={"path": "./incoming", "follow_symlinks": "always"})
    assert_clear(landing, landed=(*GOOD, "P0006"))


def test_a_link_inside_the_source_is_followed(tmp_path, synapse_env, collection, batch):
    (batch / "P0006").mkdir()
    (batch / "P0006" / "scan.png").symlink_to(batch / "P0001" / "scan.png")
    (batch / "P0006" / "label.json").write_text("{}")
    landing = ingest(tmp_path, synapse_env, collection)
    assert_clear(landing, landed=(*GOOD, "P0006"))


def test_with_follow_symlinks_never_every_link_is_refused(tmp_path, synapse_env, collection, batch):
    (batch / "P0006").mkdir()
    (batch / "P0006" / "scan.png").symlink_to(batch / "P0001" / "scan.png")
    (batch / "P0006" / "label.json").write_text("{}")
    landing = ingest(tmp_path, synapse_env, collection, source={"path": "./incoming", "follow_symlinks": "never"})
    assert_clear(landing, "P0006/scan.png", "follow_symlinks is 'never'")


def test_a_symlink_loop_is_refused(tmp_path, synapse_env, collection, batch):
    unit_files(batch / "P0006")
    (batch / "P0006" / "a").symlink_to(batch / "P0006" / "b")
    (batch / "P0006" / "b").symlink_to(batch / "P0006" / "a")
    landing = ingest(tmp_path, synapse_env, collection)
    assert_clear(landing, "P0006/a: is a symbolic link that cannot be resolved", "a link loop?", landed=(*GOOD, "P0006"))


def test_a_link_back_to_an_ancestor_folder_is_listed_once(tmp_path, synapse_env, collection, batch):
    (batch / "P0005" / "again").symlink_to(batch, target_is_directory=True)
    landing = ingest(tmp_path, synapse_env, collection, source={"path": "./incoming", "follow_symlinks": "always"})
    assert_clear(landing, "P0005/again: leads to a folder already listed as '(the source folder)'")


def test_a_broken_link_is_named(tmp_path, synapse_env, collection, batch):
    unit_files(batch / "P0006")
    (batch / "P0006" / "label.json").unlink()
    (batch / "P0006" / "label.json").symlink_to(tmp_path / "gone.json")
    landing = ingest(tmp_path, synapse_env, collection)
    assert_clear(landing, "P0006/label.json", "is a broken symbolic link")


@pytest.mark.parametrize("name, reason", [
    ("label\nx.json", "has a control character (U+000A)"),
    ("label\x7f.json", "has a control character (U+007F)"),
    ("lab\\el.json", "has a backslash in its name"),
])
def test_a_file_name_that_is_no_usable_path_is_refused(tmp_path, synapse_env, collection, batch, name, reason):
    unit_files(batch / "P0006")
    (batch / "P0006" / "label.json").rename(batch / "P0006" / name)
    landing = ingest(tmp_path, synapse_env, collection)
    assert_clear(landing, reason, "missing required spec 'label_1")


def test_a_file_name_that_is_not_utf8_is_refused(tmp_path, synapse_env, collection, batch):
    unit_files(batch / "P0006")
    os.rename(batch / "P0006" / "label.json", os.fsencode(batch / "P0006") + b"/label\xff.json")
    landing = ingest(tmp_path, synapse_env, collection)
    assert_clear(landing, "is not valid UTF-8; rename it")


def test_names_in_two_unicode_normalizations_are_one_name_and_reported(tmp_path, synapse_env, collection, batch):
    unit_files(batch / "P0006")
    (batch / "P0006" / "label.json").rename(batch / "P0006" / unicodedata.normalize("NFC", "étiquette.json"))
    (batch / "P0006" / unicodedata.normalize("NFD", "étiquette.json")).write_text("{}")
    landing = ingest(tmp_path, synapse_env, collection)
    assert_clear(landing, "the same name in two Unicode normalizations (NFC/NFD)")


def test_a_unit_folder_in_nfd_lands_under_its_nfc_key(tmp_path, synapse_env, collection, batch):
    folder = unicodedata.normalize("NFD", "P0006-é")
    unit_files(batch / folder)
    (batch / "meta.csv").write_text(sheet_rows([*GOOD]) + f"{unicodedata.normalize('NFC', 'P0006-é')},30,F\n")
    landing = ingest(tmp_path, synapse_env, collection, metadata={"key_column": "patient_id"},
                     dataset_key_template="{batch}/{group_key}")
    assert f"{BATCH}/{unicodedata.normalize('NFC', 'P0006-é')}" in landing.keys or \
        "P0006-é" in landing.text  # the schema's patient_id pattern holds it back, named in NFC
    assert "Traceback" not in landing.text and set(GOOD) <= landing.patient_ids


def test_case_only_differences_are_two_files(tmp_path, synapse_env, collection, batch):
    unit_files(batch / "P0006")
    (batch / "P0006" / "LABEL.json").write_text("{}")
    landing = ingest(tmp_path, synapse_env, collection)
    assert_clear(landing, "2 files for spec 'label_1' (P0006/LABEL.json, P0006/label.json)")


def test_spaces_dots_and_a_very_long_name_land(tmp_path, synapse_env, collection, batch):
    long_name = "é" * 120 + ".json"  # 245 bytes in UTF-8
    (batch / "P0006").mkdir()
    (batch / "P0006" / " scan .. final.png").write_bytes(PNG)
    (batch / "P0006" / long_name).write_text("{}")
    landing = ingest(tmp_path, synapse_env, collection)
    assert_clear(landing, landed=(*GOOD, "P0006"))
