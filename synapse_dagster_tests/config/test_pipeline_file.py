import pytest
import yaml

from synapse_dagster.config.loading import PipelineConfigError, load_pipeline_file, parse_pipeline_file

GOOD = {"name": "scans", "data_collection": 1, "storage": 2, "source": {"path": "/data"}}


def test_minimal_pipeline_gets_defaults():
    parsed = parse_pipeline_file({"pipelines": [GOOD]})
    pipeline = parsed.pipelines[0]
    assert pipeline.single_path and pipeline.source.is_recursive
    assert pipeline.creating_data_unit_batch_size == 100
    assert pipeline.dataset_key_template == "{batch}/{group_key}"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"data_colection": 1}, "pipeline 'scans', field 'data_colection': unknown field"),
        ({"storage": 0}, "pipeline 'scans', field 'storage': Input should be greater than 0"),
        ({"creating_data_unit_batch_size": 5000}, "field 'creating_data_unit_batch_size'"),
        ({"pattern": "by_magic"}, "field 'pattern': Input should be 'auto'"),
        ({"dataset_key_template": "{batch}"}, "must contain {group_key}"),
        ({"dataset_key_template": "{nope}/{group_key}"}, "unknown field(s) ['nope']"),
        ({"assets": {"image_1": {"path": "/x"}}}, "give exactly one of 'source'"),
        ({"name": "has space"}, "field 'name': Value error, must start with a letter"),
        ({"pattern": "rules"}, "pattern 'rules' needs a 'rules:' section"),
        ({"pattern": "flat", "rules": {"group_key_regex": "(.+)/"}}, "pattern must be 'rules' (or left out), not 'flat'"),
        ({"rules": {"group_key_regex": "(unclosed"}}, "field 'rules.group_key_regex': Value error, is not a valid regular"),
        ({"rules": {"file_rules": [{"pattern": "*.png"}]}}, "field 'rules.file_rules.0.spec': Field required"),
        ({"metadata": {"filename_regex": "P(?P<id"}}, "field 'metadata.filename_regex': Value error, is not a valid"),
        ({"metadata": {"precedence": ["sheet", "static"]}}, "field 'metadata.precedence': Value error, must list each of"),
        ({"metadata": {"sidecars": ["meta/x.yaml"]}}, "field 'metadata.sidecars': Value error, 'meta/x.yaml' must be a file name"),
        ({"metadata": {"encoding": "klingon"}}, "field 'metadata.encoding': Value error, 'klingon' is not a text encoding"),
        ({"metadata": {"encoding": "base64"}}, "field 'metadata.encoding': Value error, 'base64' is not a text encoding"),
        ({"metadata": {"worksheet": ""}}, "field 'metadata.worksheet': String should have at least 1 character"),
        ({"pattern": "multi_path"}, "pattern 'multi_path' needs 'assets'"),
        ({"source": {"path": "s3://b/p", "connection": {"secrets_from_env": {"password": "X"}}}},
         "field 'source.connection.secrets_from_env': Value error, unknown secret(s) ['password']"),
        ({"source": {"path": "s3://b/p", "connection": {"secret_key": "oops"}}}, "field 'source.connection.secret_key': unknown field"),
        ({"batches": {"mode": "windows", "window": "weekly"}}, "field 'batches.window': Value error, must be 'hourly'"),
        ({"batches": {"mode": "windows", "ready_marker": "_READY"}}, "windows mode uses settle_seconds instead"),
        ({"sensor": {"default_status": "on"}}, "field 'sensor.default_status': Input should be 'running' or 'stopped'"),
        ({"engine": {"kind": "spark"}}, "field 'engine.kind': Input should be 'local' or 'ray'"),
        ({"engine": {"kind": "ray", "units_per_shard": 0}}, "field 'engine.units_per_shard': Input should be greater"),
        ({"engine": {"kind": "ray"}, "on_dataset_key_collision": "fail"}, "engine 'ray' delivers shards on their own"),
        ({"owners": ["ana"]}, "field 'owners': Value error, 'ana' is neither an e-mail address nor a team"),
        ({"owners": ["team:"]}, "field 'owners': Value error, 'team:' is neither"),
        ({"tags": {"has space": "x"}}, "field 'tags': Value error, key 'has space': use letters, digits"),
        ({"tags": {"synapse/pipeline": "x"}}, "field 'tags': Value error, key 'synapse/pipeline': keys starting with"),
        ({"tags": {"team": "a/b"}}, "field 'tags': Value error, 'team': value 'a/b': use letters"),
        ({"tags": {"team": 5}}, "field 'tags.team': Input should be a valid string"),
    ],
)
def test_errors_name_the_pipeline_and_the_field(change, expected):
    with pytest.raises(PipelineConfigError) as err:
        parse_pipeline_file({"pipelines": [{**GOOD, **change}]}, origin="p.yaml")
    assert expected in str(err.value)
    assert str(err.value).startswith("p.yaml is invalid")


@pytest.mark.parametrize("owner", ["ana@example.org", "team:ml-data", "team:x", "ana", "team:", "a@b", "@x.org"])
def test_owners_are_accepted_exactly_when_dagster_accepts_them(owner):
    from dagster._core.definitions.utils import is_valid_owner

    try:
        parse_pipeline_file({"pipelines": [{**GOOD, "owners": [owner]}]})
        accepted = True
    except PipelineConfigError:
        accepted = False
    assert accepted == is_valid_owner(owner)


@pytest.mark.parametrize("key, value", [("domain", "radiology"), ("ns/key", "v-1.2_x"), ("a" * 63, ""),
                                        ("a" * 64, "x"), ("a/b/c", "x"), ("k", "a b"), ("k", "é"), ("k", "x" * 64)])
def test_tags_are_accepted_exactly_when_dagster_accepts_them_on_an_asset(key, value):
    import dagster as dg

    try:
        parse_pipeline_file({"pipelines": [{**GOOD, "tags": {key: value}}]})
        accepted = True
    except PipelineConfigError:
        accepted = False
    try:
        dg.AssetSpec("probe", tags={key: value})
        dagster_accepts = True
    except dg.DagsterInvalidDefinitionError:
        dagster_accepts = False
    assert accepted == dagster_accepts


def test_nested_field_path_and_pipeline_position_when_unnamed():
    bad = {k: v for k, v in GOOD.items() if k != "name"}
    bad["source"] = {"path": "/d", "recursive": True}
    with pytest.raises(PipelineConfigError) as err:
        parse_pipeline_file({"pipelines": [GOOD, bad]})
    message = str(err.value)
    assert "pipeline #2, field 'name': Field required" in message
    assert "pipeline #2, field 'source.recursive': unknown field" in message


def test_duplicate_pipeline_names_rejected():
    with pytest.raises(PipelineConfigError, match="pipeline name 'scans' is used twice"):
        parse_pipeline_file({"pipelines": [GOOD, GOOD]})


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(PipelineConfigError, match="does not exist; set SYNAPSE_DAGSTER_PIPELINES"):
        load_pipeline_file(tmp_path / "nope.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("pipelines: [\n")
    with pytest.raises(PipelineConfigError, match="broken.yaml:2:1: not valid YAML"):
        load_pipeline_file(broken)
    wrong_shape = tmp_path / "shape.yaml"
    wrong_shape.write_text("- a\n- b\n")
    with pytest.raises(PipelineConfigError, match="top-level 'pipelines:' list"):
        load_pipeline_file(wrong_shape)


def test_the_committed_json_schema_is_current_and_accepts_the_repo_pipeline_file():
    import json
    from pathlib import Path

    import jsonschema
    import yaml

    from synapse_dagster.config.loading import json_schema

    repo = Path(__file__).resolve().parents[2]
    committed = (repo / "pipelines.schema.json").read_text(encoding="utf-8")
    assert committed == json_schema(), "regenerate it: synapse-dagster check --json-schema > pipelines.schema.json"
    jsonschema.validate(yaml.safe_load((repo / "pipelines.yaml").read_text()), json.loads(committed))
    with pytest.raises(jsonschema.ValidationError, match="data_colection"):
        jsonschema.validate({"pipelines": [{"name": "x", "data_colection": 1, "storage": 1, "source": {"path": "."}}]},
                            json.loads(committed))


FILE = """\
pipelines:
  - name: scans
    data_collection: 1
    storage: 2
    source:
      path: /data
"""


def load_error(tmp_path, text: str) -> list[str]:
    """The message's lines for a pipeline file holding ``text``, each without the file's directory."""
    path = tmp_path / "pipelines.yaml"
    path.write_text(text)
    with pytest.raises(PipelineConfigError) as err:
        load_pipeline_file(path)
    return str(err.value).replace(f"{tmp_path}/", "").splitlines()


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (("data_collection: 1", "data_colection: 1"), [
            "pipelines.yaml:2: pipeline 'scans', field 'data_collection': Field required",
            "pipelines.yaml:3: pipeline 'scans', field 'data_colection': unknown field (check the spelling; "
            "see README 'Pipeline file')"]),
        (("storage: 2", "storage: two"), [
            "pipelines.yaml:4: pipeline 'scans', field 'storage': Input should be a valid integer, unable to parse "
            "string as an integer"]),
        (("name: scans", "name: has space"), [
            "pipelines.yaml:2: pipeline 'has space', field 'name': Value error, must start with a letter and hold only "
            "letters, digits and '_' (it becomes a Dagster asset prefix)"]),
        (("path: /data", "path: /data\n      recursive: false"), [
            "pipelines.yaml:7: pipeline 'scans', field 'source.recursive': unknown field (check the spelling; see "
            "README 'Pipeline file')"]),
        (("    source:", "    pattern: rules\n    source:"), [
            "pipelines.yaml:2: pipeline 'scans': Value error, pattern 'rules' needs a 'rules:' section (file_rules "
            "and/or group_key_regex)"]),
    ],
    ids=["typo'd key", "wrong type", "bad name", "nested unknown key", "a rule across fields"],
)
def test_errors_name_the_line(tmp_path, edit, expected):
    assert load_error(tmp_path, FILE.replace(*edit)) == expected


def test_a_duplicate_pipeline_name_points_at_the_second(tmp_path):
    second = FILE.split("\n", 1)[1]
    assert load_error(tmp_path, FILE + second) == [
        "pipelines.yaml:7: pipeline 'scans', field 'name': pipeline name 'scans' is used twice (also by pipeline #1); "
        "names must be unique"]


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (("    storage: 2", "   storage: 2"), "pipelines.yaml:4:4: not valid YAML: expected <block end>, but found "
         "'<block mapping start>' (while parsing a block collection from line 2, column 3); fix the YAML syntax there"),
        (("path: /data", "path: \"/data"), "pipelines.yaml:7:1: not valid YAML: found unexpected end of stream (while "
         "scanning a quoted scalar from line 6, column 13); fix the YAML syntax there"),
        (("storage: 2", "storage: !id 2"), "pipelines.yaml:4:14: not valid YAML: could not determine a constructor for "
         "the tag '!id'; write a plain value there"),
    ],
    ids=["indentation", "unclosed quote", "unknown tag"],
)
def test_invalid_yaml_is_one_line_with_line_and_column(tmp_path, edit, expected):
    lines = load_error(tmp_path, FILE.replace(*edit))
    assert len(lines) == 1 and lines[0].startswith(expected), lines


def test_a_file_in_another_encoding_is_named(tmp_path):
    path = tmp_path / "pipelines.yaml"
    path.write_bytes(FILE.replace("/data", "/donn\u00e9es").encode("latin-1"))
    with pytest.raises(PipelineConfigError, match=r"pipelines.yaml:6: not UTF-8 text \(byte 0xe9\); save the file as UTF-8$"):
        load_pipeline_file(path)


def test_a_key_repeated_in_one_mapping_names_both_lines(tmp_path):
    assert load_error(tmp_path, FILE + "    storage: 3\n") == [
        "pipelines.yaml:7: pipeline 'scans', field 'storage': given twice in one mapping (lines 4 and 7); YAML would "
        "silently keep only the last, so remove one"]


def test_yaml_merge_keys_are_not_repeats(tmp_path):
    text = FILE.replace("  - name: scans", "  - &first\n    name: scans") + "  - <<: *first\n    name: other\n"
    path = tmp_path / "pipelines.yaml"
    path.write_text(text)
    assert [p.name for p in load_pipeline_file(path)[0].pipelines] == ["scans", "other"]


def test_text_given_to_parse_adds_lines_and_data_alone_does_not():
    text = FILE.replace("storage: 2", "storage: 0")
    data = yaml.safe_load(text)
    with pytest.raises(PipelineConfigError, match=r"^p.yaml:4: pipeline 'scans', field 'storage': Input should be"):
        parse_pipeline_file(data, origin="p.yaml", text=text)
    with pytest.raises(PipelineConfigError, match=r"^p.yaml is invalid:\n  - pipeline 'scans', field 'storage'"):
        parse_pipeline_file(data, origin="p.yaml")
