"""``synapse-dagster doctor`` against the real sandbox through the real SDK client: one line per check, the fix on
every failing line, exit 1 on any failure, and never the token or a traceback."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import yaml

from synapse_dagster.cli.main import main as cli_main
from synapse_dagster_tests.conftest import new_collection
from synapse_dagster_tests.servers.common import free_port

REPO = Path(__file__).resolve().parents[2]
PROJECT = 1  # the sandbox seed's project


@pytest.fixture
def setup(tmp_path, synapse_env, monkeypatch):
    """A good setup: a pipeline file on a new collection with a local source, a SQLite instance, no ledger URL."""
    (tmp_path / "incoming" / "b1").mkdir(parents=True)
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry: {enabled: false}\n")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    for name in ("SYNAPSE_DAGSTER_LEDGER_URL", "SYNAPSE_DAGSTER_PIPELINES", "RAY_ADDRESS"):
        monkeypatch.delenv(name, raising=False)
    collection = new_collection(synapse_env)
    write_pipelines(tmp_path, {"name": "scans", "data_collection": collection, "storage": 1, "project": PROJECT,
                               "source": {"path": "./incoming"}})
    return tmp_path, collection


def write_pipelines(folder: Path, *pipelines: dict) -> Path:
    path = folder / "pipelines.yaml"
    path.write_text(yaml.safe_dump({"pipelines": list(pipelines)}, sort_keys=False))
    return path


def doctor(folder: Path, capsys) -> tuple[int, list[str]]:
    code = cli_main(["doctor", "--pipelines", str(folder / "pipelines.yaml")])
    captured = capsys.readouterr()
    output = captured.out + captured.err
    assert "Traceback" not in output and "Stack Trace" not in output, output
    return code, captured.out.splitlines()


def line(lines: list[str], start: str) -> str:
    found = [text for text in lines if text.startswith(start)]
    assert len(found) == 1, "\n".join(lines)
    return found[0]


def test_a_good_setup_passes_every_check(setup, synapse_env, capsys):
    folder, collection = setup
    code, lines = doctor(folder, capsys)
    assert code == 0, "\n".join(lines)
    host = synapse_env.url
    assert lines == [
        f"ok    pipeline file: {folder / 'pipelines.yaml'}: 1 pipeline(s): scans",
        line(lines, "ok    synapse sdk: synapse-sdk "),
        f"ok    credentials: host {host} and token from the environment",
        f"ok    synapse host: {host} answers",
        f"ok    synapse token: valid for {host} (from the environment)",
        f"ok    dagster instance: DAGSTER_HOME={folder / 'dagster_home'}: SqliteRunStorage answers (0 run(s))",
        "skip  ledger: SYNAPSE_DAGSTER_LEDGER_URL is not set: each host keeps the ledger in a SQLite file in its "
        "state folder",
        f"ok    pipeline 'scans': data collection {collection} 'test collection {collection}': file specifications "
        "image_1 (required), label_1 (required)",
        "ok    pipeline 'scans': storage 1 'sandbox-local' (file_system)",
        "ok    pipeline 'scans': project 1 'Chest X-ray labeling (demo)'",
        f"ok    pipeline 'scans': source {folder / 'incoming'} can be listed",
    ]
    assert synapse_env.token not in "\n".join(lines)


def test_a_missing_pipeline_file_fails_and_skips_the_pipelines(setup, capsys):
    folder, _ = setup
    (folder / "pipelines.yaml").unlink()
    code, lines = doctor(folder, capsys)
    assert code == 1
    assert lines[0] == (f"FAIL  pipeline file: pipeline file {folder / 'pipelines.yaml'} does not exist; set "
                        "SYNAPSE_DAGSTER_PIPELINES to your pipeline file or create pipelines.yaml in the working "
                        "directory")
    assert lines[-1].startswith("skip  pipelines: no valid pipeline file (above)")
    assert line(lines, "ok    synapse token:")  # the checks that need no pipeline file still ran


def test_an_invalid_pipeline_file_prints_its_one_line_message_and_the_fix(setup, capsys):
    folder, collection = setup
    write_pipelines(folder, {"name": "scans", "data_colection": collection, "storage": 1,
                             "source": {"path": "./incoming"}})
    code, lines = doctor(folder, capsys)
    assert code == 1
    # both problems on the one line, each with its line number: the misspelt field and the one it left missing
    assert lines[0].startswith(f"FAIL  pipeline file: {folder / 'pipelines.yaml'}:2: pipeline 'scans', field "
                               "'data_collection': Field required; ")
    assert f"{folder / 'pipelines.yaml'}:3: pipeline 'scans', field 'data_colection': unknown field" in lines[0]
    assert lines[0].endswith("— fix: edit the file there ('synapse-dagster check' says the same; "
                             "pipelines.schema.json lets an editor mark it)")


def test_a_bad_token_fails_names_the_fix_never_the_token_and_skips_the_lookups(setup, synapse_env, capsys,
                                                                                monkeypatch):
    folder, _ = setup
    token = "not-the-sandbox-token-4711"
    monkeypatch.setenv("SYNAPSE_ACCESS_TOKEN", token)
    code, lines = doctor(folder, capsys)
    assert code == 1
    assert line(lines, "FAIL  synapse token:") == (
        f"FAIL  synapse token: Synapse at {synapse_env.url} rejected the access token from the environment (401) — "
        "fix: set SYNAPSE_ACCESS_TOKEN to a valid token, or unset it and run 'synapse login'")
    assert line(lines, "skip  pipeline 'scans':") == (
        "skip  pipeline 'scans': data collection, storage and project not checked: Synapse credentials, host or "
        "token failed (above)")
    assert line(lines, "ok    pipeline 'scans': source")  # a local source needs no Synapse
    assert token not in "\n".join(lines)


def test_a_token_from_the_login_file_is_found_and_its_fix_is_a_new_login(setup, synapse_env, capsys, monkeypatch):
    folder, _ = setup
    config = Path.home() / ".synapse" / "config.json"  # HOME is the test's own (synapse_env)
    config.parent.mkdir(parents=True)
    config.write_text(f'{{"host": "{synapse_env.url}", "access_token": "stale-login-token-0815"}}')
    monkeypatch.delenv("SYNAPSE_HOST")
    monkeypatch.delenv("SYNAPSE_ACCESS_TOKEN")
    code, lines = doctor(folder, capsys)
    assert code == 1
    assert line(lines, "ok    credentials:") == f"ok    credentials: host {synapse_env.url} and token from {config}"
    assert line(lines, "FAIL  synapse token:").endswith(
        "— fix: run 'synapse login' again, or set SYNAPSE_ACCESS_TOKEN to a valid token")
    assert "stale-login-token-0815" not in "\n".join(lines)


def test_no_credentials_at_all_say_where_to_put_them(setup, capsys, monkeypatch):
    folder, _ = setup
    monkeypatch.delenv("SYNAPSE_HOST")
    monkeypatch.delenv("SYNAPSE_ACCESS_TOKEN")
    code, lines = doctor(folder, capsys)
    assert code == 1
    assert line(lines, "FAIL  credentials:") == (
        "FAIL  credentials: no Synapse host configured: set SYNAPSE_HOST (and SYNAPSE_ACCESS_TOKEN), or run "
        "'synapse login' to write ~/.synapse/config.json")
    assert line(lines, "skip  synapse host:") == "skip  synapse host: no credentials (above)"
    assert line(lines, "skip  synapse token:") == "skip  synapse token: no credentials (above)"


def test_an_unreachable_host_fails_fast_and_skips_the_token(setup, capsys, monkeypatch):
    folder, _ = setup
    host = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("SYNAPSE_HOST", host)
    code, lines = doctor(folder, capsys)
    assert code == 1
    assert line(lines, "FAIL  synapse host:") == (
        f"FAIL  synapse host: cannot reach Synapse at {host} (the environment): Connection refused — fix: check "
        "SYNAPSE_HOST (or the host in ~/.synapse/config.json: 'synapse login') and that the server is up and "
        "reachable from here")
    assert line(lines, "skip  synapse token:") == f"skip  synapse token: {host} does not answer (above)"


def test_dagster_home_unset_fails_with_the_fix(setup, capsys, monkeypatch):
    folder, _ = setup
    monkeypatch.delenv("DAGSTER_HOME")
    code, lines = doctor(folder, capsys)
    assert code == 1
    assert line(lines, "FAIL  dagster instance:") == (
        "FAIL  dagster instance: DAGSTER_HOME is not set (it holds Dagster's runs and history) — fix: export "
        "DAGSTER_HOME=~/dagster_home; mkdir -p $DAGSTER_HOME, then run the doctor again")


@pytest.mark.parametrize("text, problem", [
    ("telemetry: {enabled: false}\nrun_storge: {}\n",
     "dagster.yaml is invalid: Received unexpected config entry \"run_storge\" at the root."),
    ("storage: [unclosed\n", "ParserError: while parsing a flow sequence"),
])
def test_a_broken_dagster_yaml_fails_with_its_first_error(setup, capsys, text, problem):
    folder, _ = setup
    (folder / "dagster_home" / "dagster.yaml").write_text(text)
    code, lines = doctor(folder, capsys)
    assert code == 1
    found = line(lines, "FAIL  dagster instance:")
    assert found.startswith(f"FAIL  dagster instance: DAGSTER_HOME={folder / 'dagster_home'}: {problem}"), found
    assert found.endswith(f"— fix: fix {folder / 'dagster_home' / 'dagster.yaml'} or what it points at "
                          "(deploy/dagster-postgres.yaml is the Postgres one; its DAGSTER_PG_* variables must be set)")


def test_postgres_instance_and_ledger_pass(setup, postgres_server, capsys, monkeypatch):
    """deploy/dagster-postgres.yaml as the instance, and a Postgres ledger, on a real server."""
    folder, _ = setup
    shutil.copy(REPO / "deploy" / "dagster-postgres.yaml", folder / "dagster_home" / "dagster.yaml")
    database = postgres_server.new_database("doctor")
    for name, value in {"HOST": "127.0.0.1", "PORT": str(postgres_server.port), "USER": "postgres",
                        "PASSWORD": postgres_server.password, "DB": database.rsplit("/", 1)[1]}.items():
        monkeypatch.setenv(f"DAGSTER_PG_{name}", value)
    monkeypatch.setenv("SYNAPSE_DAGSTER_LEDGER_URL", database)
    code, lines = doctor(folder, capsys)
    assert code == 0, "\n".join(lines)
    assert line(lines, "ok    dagster instance:") == (
        f"ok    dagster instance: DAGSTER_HOME={folder / 'dagster_home'}: PostgresRunStorage answers (0 run(s))")
    assert line(lines, "ok    ledger:") == (
        f"ok    ledger: {database.replace(postgres_server.password, '***')} connects")
    assert postgres_server.password not in "\n".join(lines)


@pytest.mark.parametrize("url, expected", [
    ("postgresql://ledger:hunter2secret@127.0.0.1:{port}/ledger",
     "FAIL  ledger: cannot connect to postgresql://ledger:***@127.0.0.1:{port}/ledger: OperationalError: connection "
     "to server at \"127.0.0.1\", port {port} failed: Connection refused"),
    ("mysql://u@h/db", "FAIL  ledger: the ledger URL must start with sqlite:/// or postgresql://, not mysql:// "
     "(SYNAPSE_DAGSTER_LEDGER_URL)"),
])
def test_a_bad_ledger_url_fails_with_the_fix(setup, capsys, monkeypatch, url, expected):
    folder, _ = setup
    port = free_port()
    monkeypatch.setenv("SYNAPSE_DAGSTER_LEDGER_URL", url.format(port=port))
    code, lines = doctor(folder, capsys)
    assert code == 1
    found = line(lines, "FAIL  ledger:")
    assert found.startswith(expected.format(port=port)), found
    if "postgresql" in url:
        assert found.endswith("— fix: check SYNAPSE_DAGSTER_LEDGER_URL (host, port, user, password, database) and "
                              "that the database server is up")
    assert "hunter2secret" not in "\n".join(lines)


def test_unknown_collection_storage_and_project_each_name_their_setting(setup, capsys):
    folder, _ = setup
    write_pipelines(folder, {"name": "scans", "data_collection": 9042, "storage": 9043, "project": 9044,
                             "source": {"path": "./incoming"}})
    code, lines = doctor(folder, capsys)
    assert code == 1
    failures = [text for text in lines if text.startswith("FAIL  pipeline 'scans':")]
    assert [text.split(" — fix: ")[1] for text in failures] == [
        f"set pipelines[0].{setting} to the ID of a {what} that exists there (the number in its Synapse URL)"
        for setting, what in (("data_collection", "data collection"), ("storage", "storage"), ("project", "project"))]
    assert [text.split(": ", 1)[1].split(" not found")[0] for text in failures] == [
        "data collection 9042", "storage 9043", "project 9044"]


def test_the_second_pipeline_is_named_by_its_index(setup, capsys):
    folder, collection = setup
    good = {"name": "scans", "data_collection": collection, "storage": 1, "source": {"path": "./incoming"}}
    write_pipelines(folder, good, {**good, "name": "labels", "data_collection": 9045})
    code, lines = doctor(folder, capsys)
    assert code == 1
    assert line(lines, "FAIL  pipeline 'labels':").endswith("— fix: set pipelines[1].data_collection to the ID of a "
                                                             "data collection that exists there (the number in its "
                                                             "Synapse URL)")
    assert line(lines, "ok    pipeline 'scans': data collection")


def test_a_local_source_that_does_not_exist_names_the_setting(setup, capsys):
    folder, collection = setup
    write_pipelines(folder, {"name": "scans", "data_collection": collection, "storage": 1,
                             "assets": {"image_1": {"path": "./images"}, "label_1": {"path": "./incoming"}}})
    code, lines = doctor(folder, capsys)
    assert code == 1
    assert line(lines, "FAIL  pipeline 'scans', spec 'image_1':") == (
        f"FAIL  pipeline 'scans', spec 'image_1': pipelines[0].assets.image_1.path: source './images' does not "
        f"exist (resolved to {folder / 'images'}); check the path in the pipeline file — fix: set "
        f"pipelines[0].assets.image_1.path to a folder that exists and this process may read (a relative path "
        f"starts at {folder})")
    assert line(lines, "ok    pipeline 'scans', spec 'label_1':")


def test_a_ray_pipeline_with_nothing_at_ray_address_fails(setup, capsys, monkeypatch):
    folder, collection = setup
    address = f"127.0.0.1:{free_port()}"
    monkeypatch.setenv("RAY_ADDRESS", address)
    write_pipelines(folder, {"name": "scans", "data_collection": collection, "storage": 1,
                             "source": {"path": "./incoming"}, "engine": {"kind": "ray"}})
    code, lines = doctor(folder, capsys)
    assert code == 1
    assert line(lines, "ok    ray:").endswith("and dagster-ray installed, for pipeline(s) scans")
    assert line(lines, "FAIL  ray cluster:") == (
        f"FAIL  ray cluster: nothing answers at {address} (RAY_ADDRESS={address}): Connection refused — fix: start "
        "the cluster ('ray start --head') or set RAY_ADDRESS to its address (host:6379, or ray://host:10001)")


def test_no_ray_lines_without_a_ray_pipeline(setup, capsys, monkeypatch):
    folder, _ = setup
    monkeypatch.setenv("RAY_ADDRESS", f"127.0.0.1:{free_port()}")
    code, lines = doctor(folder, capsys)
    assert code == 0
    assert not [text for text in lines if text.split()[1].startswith("ray")]


def test_an_s3_source_is_listed_with_its_own_keys_and_a_wrong_secret_fails_unleaked(setup, s3_server, capsys,
                                                                                     monkeypatch):
    folder, collection = setup
    bucket = s3_server.new_bucket("doctor")
    s3_server.put(bucket, "incoming/b1/a.png", b"x")
    connection = {"endpoint_url": s3_server.endpoint, "region": s3_server.region,
                  "secrets_from_env": {"access_key": "DOCTOR_S3_KEY", "secret_key": "DOCTOR_S3_SECRET"}}
    write_pipelines(folder, {"name": "scans", "data_collection": collection, "storage": 1,
                             "source": {"path": f"s3://{bucket}/incoming", "connection": connection}})
    monkeypatch.setenv("DOCTOR_S3_KEY", s3_server.access_key)
    monkeypatch.setenv("DOCTOR_S3_SECRET", s3_server.secret_key)
    code, lines = doctor(folder, capsys)
    assert code == 0, "\n".join(lines)
    assert line(lines, "ok    pipeline 'scans': source") == \
        f"ok    pipeline 'scans': source s3://{bucket}/incoming/ can be listed"

    wrong = "wrong-secret-Zq81x7"
    monkeypatch.setenv("DOCTOR_S3_SECRET", wrong)
    code, lines = doctor(folder, capsys)
    assert code == 1
    failed = line(lines, "FAIL  pipeline 'scans':")
    assert failed.startswith(f"FAIL  pipeline 'scans': pipelines[0].source.path: ")
    assert failed.endswith("— fix: check pipelines[0].source.path and its connection settings (endpoint, bucket or "
                           "host, credentials in the environment)")
    assert wrong not in "\n".join(lines) and s3_server.secret_key not in "\n".join(lines)


def test_a_ray_pipeline_with_a_live_cluster_passes(setup, capsys, monkeypatch, tmp_path_factory):
    pytest.importorskip("ray", reason="Ray is a dev dependency; scripts/test installs it")
    from synapse_dagster_tests.servers.ray import ray_head

    folder, collection = setup
    write_pipelines(folder, {"name": "scans", "data_collection": collection, "storage": 1,
                             "source": {"path": "./incoming"}, "engine": {"kind": "ray"}})
    with ray_head(1, dict(os.environ), tmp_path_factory.mktemp("ray")) as address:
        monkeypatch.setenv("RAY_ADDRESS", address)
        code, lines = doctor(folder, capsys)
    assert code == 0, "\n".join(lines)
    assert line(lines, "ok    ray cluster:") == f"ok    ray cluster: {address} accepts connections (RAY_ADDRESS={address})"


def test_an_sdk_older_than_the_minimum_fails_with_the_install_line():
    """The installed synapse-sdk's own version against a minimum above it (the installed one cannot be swapped
    inside a test run); the real minimum passes, as the good setup above shows."""
    from importlib import metadata

    from synapse_dagster.core.health.synapse import MINIMUM_SDK, sdk_version

    installed = metadata.version("synapse-sdk")
    assert sdk_version("9999.1.1").line == (f"FAIL  synapse sdk: synapse-sdk {installed} is older than 9999.1.1 — "
                                            "fix: pip install 'synapse-sdk>=9999.1.1'")
    assert sdk_version().line == f"ok    synapse sdk: synapse-sdk {installed} (>= {MINIMUM_SDK})"


def test_the_minimum_sdk_is_the_one_pyproject_pins():
    import tomllib

    from synapse_dagster.core.health.synapse import MINIMUM_SDK

    dependencies = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    assert f"synapse-sdk>={MINIMUM_SDK}" in [d.replace(" ", "") for d in dependencies]
