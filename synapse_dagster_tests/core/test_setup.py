"""The plain parts of ``init``: the commented pipeline text, extending a hand-written file, what a collection's
schema asks of a unit, and which regexes init takes."""

from __future__ import annotations

import pytest
import yaml

from synapse_dagster.core.setup.collections import choice_of, describe_collection, meta_fields
from synapse_dagster.core.setup.pipeline_text import PipelineDraft, PipelineFileError, extended_file, new_file

DRAFT = PipelineDraft(
    {"name": "scans", "data_collection": 3, "storage": 1, "source": {"path": "./in # box", "is_recursive": True},
     "metadata": {"filename_regex": r"(?P<age>\d+): x", "key_column": "yes"}},
    {"data_collection": "'CT': image_1 (required)", "metadata.key_column": "names 6 of 6"})


def test_the_new_file_reads_back_as_the_values_and_says_why_beside_each_choice():
    text = new_file(DRAFT, "./pipelines.schema.json")
    assert text.splitlines()[0] == "# yaml-language-server: $schema=./pipelines.schema.json"
    assert yaml.safe_load(text) == {"pipelines": [DRAFT.values]}  # '#', ': ' and 'yes' survive as strings
    assert any(line.startswith("      key_column: ") and line.endswith("# names 6 of 6") for line in text.splitlines())


def test_extending_keeps_every_line_and_comment_of_the_file():
    existing = "# ours\npipelines:\n  - name: old  # keep\n    data_collection: 1\n    storage: 1\n" \
               "    source: {path: ./a}\n"
    text = extended_file(existing, DRAFT, "./s.json")
    assert existing in text
    assert [p["name"] for p in yaml.safe_load(text)["pipelines"]] == ["old", "scans"]


@pytest.mark.parametrize(("existing", "why"), [
    ("pipelines:\n  - name: scans\n", "already has a pipeline named 'scans'"),
    ("pipelines:\n  - name: a\nsettings: {x: 1}\n", "is not the last thing in it"),
    ("settings: {x: 1}\n", "has no 'pipelines:' list"),
    ("pipelines: [\n", "is not valid YAML"),
])
def test_a_file_that_cannot_take_the_pipeline_is_refused_with_the_reason(existing, why):
    with pytest.raises(PipelineFileError, match=why):
        extended_file(existing, DRAFT, "./s.json")


SCHEMA = {"required": ["patient_id", "age"], "properties": {
    "age": {"type": "integer"}, "sex": {"type": "string", "enum": ["F", "M"]}, "seen": {"type": ["string", "null"],
                                                                                     "format": "date"}}}


def test_the_schema_fields_are_listed_required_first_with_their_types():
    assert meta_fields(SCHEMA) == [("patient_id", "any", True), ("age", "integer", True),
                                   ("sex", "string, one of F, M", False), ("seen", "string|null, date", False)]
    assert meta_fields(None) == [] and meta_fields({"required": "age"}) == []


def test_a_collection_without_specs_is_listed_with_why_it_cannot_be_used():
    broken = choice_of({"id": 5, "name": "empty", "file_specifications": []})
    assert broken.specs is None and "cannot be used: has no file specifications" in broken.title
    fine = choice_of({"id": 6, "name": "CT", "meta": {"data_unit_meta_schema": SCHEMA}, "file_specifications": [
        {"name": "image_1", "extensions": ["png"], "is_required": True}, {"name": "label_1", "extensions": [".json"]}]})
    assert fine.title == "6: CT — image_1*, label_1"
    lines = describe_collection(fine.specs)
    assert "    image_1 (.png) — required" in lines and "    label_1 (.json) — optional" in lines
    assert "    age (integer) — required" in lines
