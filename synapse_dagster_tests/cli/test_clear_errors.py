"""A user's mistake in a setting or an argument is one line that names it and the fix, and exit 2; a run that
fails is a report naming the cause, and exit 1. Never a Python traceback, never Dagster's stack."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from synapse_sandbox.demo_data import demo_seed, generate_batch

REPO = Path(__file__).resolve().parents[2]

PIPELINE = {"name": "demo", "data_collection": 1, "storage": 1, "source": {"path": "./incoming"},
            "metadata": {"key_column": "patient_id"}}


@pytest.fixture
def workdir(tmp_path):
    (tmp_path / "incoming" / "b1" / "P1").mkdir(parents=True)
    (tmp_path / "incoming" / "b1" / "P1" / "label.json").write_text("{}")
    (tmp_path / "pipelines.yaml").write_text(yaml.safe_dump({"pipelines": [PIPELINE]}))
    (tmp_path / "typo.yaml").write_text(yaml.safe_dump({"pipelines": [  # the typo is on line 8
        {**{k: v for k, v in PIPELINE.items() if k != "data_collection"}, "data_colection": 1}]}, sort_keys=False))
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "dagster.yaml").write_text("telemetry: {enabled: false}\n")
    return tmp_path


def run(workdir, env: dict[str, str | None], command: list[str]) -> subprocess.CompletedProcess:
    """``command`` in ``workdir`` on this checkout's code (not whichever one the venv installed), with ``env``."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("SYNAPSE_")}
    base.update({"HOME": str(workdir), "DAGSTER_HOME": str(workdir / "home"), "SYNAPSE_HOST": "http://127.0.0.1:9",
                 "SYNAPSE_ACCESS_TOKEN": "some-token",
                 "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)})
    for key, value in env.items():
        if value is None:
            base.pop(key, None)
        else:
            base[key] = value
    return subprocess.run(command, env=base, cwd=workdir, capture_output=True, text=True, timeout=180)


def ingest(workdir, env: dict[str, str | None], *args: str) -> subprocess.CompletedProcess:
    return run(workdir, env, [sys.executable, "-m", "synapse_dagster.cli", "ingest", "--pipeline", "demo", *args])


CASES = {
    "no token": ({"SYNAPSE_ACCESS_TOKEN": None}, ["--batch", "b1"], "set SYNAPSE_ACCESS_TOKEN or run 'synapse login'"),
    "host without scheme": ({"SYNAPSE_HOST": "127.0.0.1:9"}, ["--batch", "b1"], "must start with http:// or https://"),
    "batch key with ..": ({}, ["--batch", "../escape"], "batch key '../escape' is not usable"),
    "batch key with odd characters": ({}, ["--batch", "b1; rm -rf"], "batch key 'b1; rm -rf' is not usable"),
    "typo in the pipeline file": ({}, ["--pipelines", "typo.yaml", "--batch", "b1"],
                                  "typo.yaml:8: pipeline 'demo', field 'data_colection': unknown field"),
    "no DAGSTER_HOME": ({"DAGSTER_HOME": None}, ["--batch", "b1"], "DAGSTER_HOME is not set"),
    "an API concurrency that is no number": ({"SYNAPSE_DAGSTER_API_CONCURRENCY": "lots"}, ["--batch", "b1"],
                                             "SYNAPSE_DAGSTER_API_CONCURRENCY must be a whole number from 1 to 256"),
    "a ledger URL of another database": ({"SYNAPSE_DAGSTER_LEDGER_URL": "mysql://u@h/db"}, ["--batch", "b1"],
                                         "the ledger URL must start with sqlite:/// or postgresql://"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_usage_mistake_is_one_line_and_exit_2(workdir, case):
    env, args, expected = CASES[case]
    done = ingest(workdir, env, *args)
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    assert expected in output
    assert "Traceback" not in output and "Stack Trace" not in output
    assert len(done.stderr.strip().splitlines()) <= 3, done.stderr  # one message (a file's errors may list a few)


def test_a_failed_run_names_its_cause_once_without_a_stack(workdir):
    done = ingest(workdir, {}, "--batch", "b1")  # nothing listens on port 9
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert output.count("cannot reach Synapse at http://127.0.0.1:9") == 1, output
    assert "Traceback" not in output and "Stack Trace" not in output
    assert "Not executing" not in output


def test_a_refused_token_names_the_setting(workdir, sandbox):
    done = ingest(workdir, {"SYNAPSE_HOST": sandbox.url, "SYNAPSE_ACCESS_TOKEN": "not-the-token"}, "--batch", "b1")
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "SYNAPSE_ACCESS_TOKEN" in output and "not-the-token" not in output
    assert "Traceback" not in output and "Stack Trace" not in output


def test_loading_the_code_location_with_a_broken_file_leads_with_file_and_line(workdir):
    """Dagster prints a load error as its message, then a "Stack Trace:" of every frame it was given that is not
    Dagster's own; one frame of ours (the raise in ``defs``) is the least any raised exception carries, so that is
    what is asserted: the message comes first, the stack holds no frame of the file's loading code."""
    command = [sys.executable, "-m", "dagster", "definitions", "validate", "-m", "synapse_dagster.definitions"]
    done = run(workdir, {"SYNAPSE_DAGSTER_PIPELINES": str(workdir / "typo.yaml")}, command)
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    header = "Validation failed for code location synapse_dagster.definitions:\n\n"
    message = f"PipelineConfigError: {workdir / 'typo.yaml'}:"
    assert header + "synapse_dagster.config.loading." + message in output, output
    assert f"{workdir / 'typo.yaml'}:8: pipeline 'demo', field 'data_colection': unknown field" in output
    stack = output[output.index("Stack Trace:"):]
    assert output.index(message) < output.index("Stack Trace:")
    assert [line.strip() for line in stack.splitlines() if line.strip().startswith("File ")] == [
        f'File "{REPO / "synapse_dagster" / "definitions.py"}", line {defs_raise_line()}, in defs']
    assert "Traceback" not in output and "loading.py" not in output


def defs_raise_line() -> int:
    source = (REPO / "synapse_dagster" / "definitions.py").read_text(encoding="utf-8").splitlines()
    return 1 + next(i for i, line in enumerate(source) if "raise mistake.with_traceback(None)" in line)


def sandbox_run(workdir, sandbox, collection: int, **changes) -> subprocess.CompletedProcess:
    """``ingest`` of a clean six-unit batch into ``collection`` of the sandbox, with the pipeline ``changes``."""
    generate_batch(workdir / "incoming" / "b6", units=6, seed=3, image_size=8, defects=False)
    pipeline = {**PIPELINE, "data_collection": collection, **changes}
    (workdir / "pipelines.yaml").write_text(yaml.safe_dump({"pipelines": [pipeline]}))
    return ingest(workdir, {"SYNAPSE_HOST": sandbox.url, "SYNAPSE_ACCESS_TOKEN": sandbox.token}, "--batch", "b6")


def test_a_collection_whose_schema_is_broken_is_named_as_the_collection_to_fix(workdir, sandbox, collection):
    spec = demo_seed("unused")["data_collections"][0]
    spec.update(id=collection, meta={"data_unit_meta_schema": {"type": "objekt"}}, check_schema=False)
    sandbox.seed({"data_collections": [spec]})
    done = sandbox_run(workdir, sandbox, collection)
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert output.count(f"data collection {collection}'s data_unit_meta_schema is not a valid JSON Schema") == 1, output
    assert "fix the schema in Synapse" in output
    assert "Traceback" not in output and "Stack Trace" not in output
    assert sandbox.units(collection) == []


def test_a_collection_without_file_specifications_is_named_as_the_collection_to_fix(workdir, sandbox, collection):
    spec = demo_seed("unused")["data_collections"][0]
    spec.update(id=collection, file_specifications=[])
    sandbox.seed({"data_collections": [spec]})
    done = sandbox_run(workdir, sandbox, collection)
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert output.count(f"data collection {collection} has no file specifications; add at least one in Synapse") == 1
    assert "Traceback" not in output and "Stack Trace" not in output
    assert sandbox.units(collection) == []


def test_a_token_refused_for_uploads_names_the_setting_and_is_not_retried(workdir, sandbox, collection):
    route = {"method": "POST", "path": "^data_files/presigned_upload/upload/$"}
    presigned = lambda: sandbox.stats()["requests"].get("POST data_files/presigned_upload/upload/", 0)  # noqa: E731
    before = presigned()
    sandbox.set_faults([{"match": route, "action": "error", "status": 401}])
    try:
        done = sandbox_run(workdir, sandbox, collection)
        presigns = presigned() - before
    finally:
        sandbox.set_faults([])
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "Synapse refused the access token (401) for uploads; set SYNAPSE_ACCESS_TOKEN" in output, output
    assert output.count("refused the access token") == 2, output  # the twelve files share one log line, one report line
    assert presigns <= 2, presigns  # not sent again and again
    assert sandbox.token not in output and "Traceback" not in output and "Stack Trace" not in output
    assert sandbox.units(collection) == []


def test_a_token_refused_mid_run_names_the_setting_not_the_token(workdir, sandbox, collection):
    """The first request of units lands, the second gets a 401: the run fails and says why, once."""
    route = {"method": "POST", "path": "^data_units/$"}
    sandbox.set_faults([{"match": route, "action": "latency", "times": 1}, {"match": route, "action": "error", "status": 401}])
    try:
        done = sandbox_run(workdir, sandbox, collection, creating_data_unit_batch_size=3)
    finally:
        sandbox.set_faults([])
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert len(sandbox.units(collection)) == 3
    assert output.count("check all_valid_units_created (ERROR): 3 of 6 valid units exist; 3 did not make it: Synapse "
                        "refused the access token (401); set SYNAPSE_ACCESS_TOKEN to a valid token or run 'synapse "
                        "login', then run the batch again\n") == 1, output
    assert "step failed: demo__delivery: its blocking check all_valid_units_created failed (above)\n" in output
    assert output.count("refused the access token") == 1, output
    assert sandbox.token not in output
    assert "Traceback" not in output and "Stack Trace" not in output
