"""``synapse-dagster init`` as a new user meets it: in a real pseudo-terminal (pexpect), answering questionary's
prompts by keystroke, and without a terminal, from flags alone. Both against the sandbox through the real SDK,
and both end with ``ingest`` running the written file and the units landing in the collection."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import openpyxl
import pexpect
import pytest
import yaml

from synapse_dagster.cli.init_fixes import regex_problem
from synapse_dagster.config.loading import load_pipeline_file
from synapse_sandbox.demo_data import generate_batch

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("SYNAPSE_DAGSTER_TEST_ARTIFACTS", REPO / "test-artifacts"))


@pytest.fixture
def workdir(tmp_path, synapse_env, monkeypatch):
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry: {enabled: false}\n")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("PROMPT_TOOLKIT_NO_CPR", "1")  # no terminal answers prompt_toolkit's cursor-position query
    monkeypatch.setenv("SYNAPSE_DAGSTER_STATE_DIR", str(tmp_path / "state"))
    for name in ("SYNAPSE_DAGSTER_PIPELINES", "SYNAPSE_DAGSTER_LEDGER_URL", "CI"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "synapse_dagster.cli", *args], cwd=cwd, env=os.environ.copy(),
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300)


def put_a_row_number_first(sheet: Path) -> None:
    """An export whose first column is a row number: the default key column names no unit."""
    book = openpyxl.load_workbook(sheet)
    rows = book.active
    rows.insert_cols(1)
    rows.cell(1, 1, "export_row")
    for row in range(2, rows.max_row + 1):
        rows.cell(row, 1, row - 1)
    book.save(sheet)


def dataset_keys(sandbox, collection: int) -> set[str]:
    return {u["meta"]["dataset_key"] for u in sandbox.units(collection)}


# pexpect forks a pty from this process (the sandbox client has threads); the child execs Python at once, so it
# takes no lock another thread could hold.
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_init_in_a_terminal_from_nothing_to_a_pipeline_that_ingests(workdir, synapse_env, collection):
    expected = generate_batch(workdir / "incoming" / "b001", units=6, seed=2, image_size=8)
    put_a_row_number_first(workdir / "incoming" / "b001" / "meta.xlsx")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    transcript = (ARTIFACTS / "init-terminal-session.log").open("w", encoding="utf-8")
    child = pexpect.spawn(sys.executable, ["-m", "synapse_dagster.cli", "init"], cwd=str(workdir),
                          env=os.environ.copy(), encoding="utf-8", timeout=60, dimensions=(60, 200))
    child.logfile_read = transcript
    try:
        child.expect("Data collection ID")
        child.send("\r")  # no ID at hand: the list
        child.expect("Which data collection do the files go to")
        child.expect(f"{collection}: test collection {collection}")
        child.send(f"test collection {collection}")  # typing filters the list
        child.send("\r")
        child.expect("age \\(integer\\) — required")  # the meta schema, required fields called out
        child.expect("Use the default storage")
        child.send("\r")
        child.expect("Where are the files")
        child.send("./incomming\r")  # a typo
        child.expect("does not exist")
        child.expect("Where are the files")
        child.send("./incoming\r")
        child.expect("How do new files arrive")
        child.send("\r")  # folders: b001 is a batch
        child.expect("Sampled batch 'b001'")
        child.expect("Are the files organized as nested")
        child.send("\r")
        child.expect("find no row in meta.xlsx by column 'export_row'")
        child.expect("Which column holds the unit names")
        child.send("\r")  # the best candidate, patient_id
        child.expect("key column 'patient_id', 6 usable row")
        child.expect("P0001 → dataset_key b001/P0001 \\[ready\\]")
        child.expect("meta from sheet meta.xlsx: export_row=1, patient_id='P0001', age=")
        child.expect("Name of the pipeline")
        child.send("\r")
        child.expect("Project ID")
        child.send("\r")
        child.expect("Wrote pipeline 'test_collection_")
        child.expect(pexpect.EOF)
    finally:
        child.close()
        transcript.close()
    assert child.exitstatus == 0
    text = (workdir / "pipelines.yaml").read_text()
    assert text.startswith("# yaml-language-server: $schema=./pipelines.schema.json\n")
    assert "key_column: patient_id" in text and "# names 6 of 6 sampled units in meta.xlsx" in text
    assert (workdir / "pipelines.schema.json").is_file()
    pipeline = load_pipeline_file(workdir / "pipelines.yaml")[0].pipelines[0]
    assert (pipeline.data_collection, pipeline.storage, pipeline.source.path) == (collection, 1, "./incoming")

    ran = cli("ingest", "--pipeline", pipeline.name, "--batch", "b001", cwd=workdir)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert dataset_keys(synapse_env, collection) == {f"b001/{p}" for p in expected["valid"]}


def flat_batch(folder: Path) -> None:
    """A flat export with no sheet: everything the meta schema requires is in the file names."""
    folder.mkdir(parents=True)
    for pid, age, sex in (("P0001", 34, "F"), ("P0002", 61, "M"), ("P0003", 47, "F")):
        stem = f"{pid}_{age}_{sex}"
        generate_batch(folder / ".tmp", units=1, seed=int(pid[1:]), defects=False, image_size=8)
        (folder / ".tmp" / "P0001" / "scan.png").rename(folder / f"{stem}.png")
        (folder / f"{stem}.json").write_text('{"finding": "none"}')
        for leftover in sorted((folder / ".tmp").rglob("*"), reverse=True):
            leftover.unlink() if leftover.is_file() else leftover.rmdir()
        (folder / ".tmp").rmdir()


REGEX = r"(?P<patient_id>P\d{4})_(?P<age>\d+)_(?P<sex>[FM])"


def test_init_without_a_terminal_takes_its_answers_from_flags(workdir, synapse_env, collection):
    flat_batch(workdir / "drop")
    flags = ["init", "--collection", str(collection), "--source", "./drop", "--batches", "keys", "--name", "flat"]

    hinted = cli(*flags, "--pipelines", "draft.yaml", cwd=workdir)
    assert hinted.returncode == 0, hinted.stderr
    assert "pattern: flat (pattern 3), detected from a sample" in hinted.stdout
    assert "Required meta field(s) missing from sampled units: patient_id (3 unit(s)), age (3 unit(s))" in hinted.stdout
    assert "hint: pass --filename-regex" in hinted.stdout

    done = cli(*flags, "--filename-regex", REGEX, cwd=workdir)
    assert done.returncode == 0, done.stderr
    assert "3 unit(s) in the sample: 3 ready, 0 held back" in done.stdout
    assert "meta from filename_regex: patient_id='P0001', age=34, sex='F'" in done.stdout
    written = yaml.safe_load((workdir / "pipelines.yaml").read_text())["pipelines"][0]
    assert written["metadata"]["filename_regex"] == REGEX and written["batches"] == {"mode": "keys"}
    assert written["pattern"] == "auto" and written["storage"] == 1  # the default storage, without asking

    ran = cli("ingest", "--pipeline", "flat", "--batch", "first_drop", cwd=workdir)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    units = {u["meta"]["dataset_key"]: u["meta"] for u in synapse_env.units(collection)}
    assert set(units) == {"first_drop/P0001_34_F", "first_drop/P0002_61_M", "first_drop/P0003_47_F"}
    assert units["first_drop/P0002_61_M"]["age"] == 61 and units["first_drop/P0002_61_M"]["sex"] == "M"


def nested_batch_with_sidecars(folder: Path) -> None:
    """Unit folders whose meta is a meta.yaml beside the scan and the label: no sheet at all."""
    generate_batch(folder, units=2, seed=4, defects=False, image_size=8)
    (folder / "meta.xlsx").unlink()
    for age, unit in ((30, "P0001"), (52, "P0002")):
        (folder / unit / "meta.yaml").write_text(f"patient_id: {unit}\nage: {age}\nsex: M\n")


def test_init_notices_sidecar_meta_and_reads_it_when_told(workdir, synapse_env, collection):
    nested_batch_with_sidecars(workdir / "incoming" / "b7")
    flags = ["init", "--collection", str(collection), "--source", "./incoming", "--batches", "folders"]

    hinted = cli(*flags, "--pipelines", "draft.yaml", cwd=workdir)
    assert hinted.returncode == 0, hinted.stderr
    assert "The sample holds files that look like sidecar meta: 2 meta.yaml." in hinted.stdout
    assert "hint: --sidecars meta.yaml reads them into each unit's meta" in hinted.stdout
    assert "2 unit(s) in the sample: 0 ready, 2 held back" in hinted.stdout

    done = cli(*flags, "--sidecars", "meta.yaml", cwd=workdir)
    assert done.returncode == 0, done.stderr
    assert "2 unit(s) in the sample: 2 ready, 0 held back" in done.stdout
    assert "meta from sidecar P0002/meta.yaml: patient_id='P0002', age=52, sex='M'" in done.stdout
    assert "look like sidecar meta" not in done.stdout
    ran = cli("ingest", "--pipeline", f"test_collection_{collection}", "--batch", "b7", cwd=workdir)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    ages = {u["meta"]["dataset_key"]: u["meta"]["age"] for u in synapse_env.units(collection)}
    assert ages == {"b7/P0001": 30, "b7/P0002": 52}


def test_init_on_an_s3_prefix_checks_it_previews_from_the_bucket_and_the_run_reads_it(
        workdir, synapse_env, collection, s3_server, monkeypatch):
    """The connection comes from the usual AWS_* variables, at init as at run time: the file holds only the path."""
    local = workdir / "local" / "b001"
    expected = generate_batch(local, units=4, seed=5, image_size=8)
    bucket = s3_server.new_bucket("init")
    for path in sorted(local.rglob("*")):
        if path.is_file():
            s3_server.put(bucket, f"drops/{path.relative_to(local.parent).as_posix()}", path.read_bytes())
    for name, value in (("AWS_ENDPOINT_URL", s3_server.endpoint), ("AWS_ACCESS_KEY_ID", s3_server.access_key),
                        ("AWS_SECRET_ACCESS_KEY", s3_server.secret_key), ("AWS_REGION", s3_server.region)):
        monkeypatch.setenv(name, value)
    flags = ["init", "--collection", str(collection), "--batches", "folders", "--name", "bucket"]

    wrong = cli(*flags, "--source", f"s3://{bucket}-missing/drops", cwd=workdir)
    assert wrong.returncode == 2 and f"--source 's3://{bucket}-missing/drops'" in wrong.stderr
    assert s3_server.secret_key not in wrong.stdout + wrong.stderr

    done = cli(*flags, "--source", f"s3://{bucket}/drops", cwd=workdir)
    assert done.returncode == 0, done.stderr
    assert "Sampled batch 'b001'" in done.stdout and "sheet: meta.xlsx, key column 'patient_id'" in done.stdout
    assert s3_server.secret_key not in done.stdout + (workdir / "pipelines.yaml").read_text()
    ran = cli("ingest", "--pipeline", "bucket", "--batch", "b001", cwd=workdir)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert dataset_keys(synapse_env, collection) == {f"b001/{p}" for p in expected["valid"]}


def test_a_second_init_extends_the_file_and_keeps_what_was_there(workdir, synapse_env, collection):
    flat_batch(workdir / "drop")
    existing = "# our team's pipelines\npipelines:\n  - name: old   # keep me\n    data_collection: 1\n" \
               "    storage: 1\n    source: {path: ./drop}\n"
    (workdir / "pipelines.yaml").write_text(existing)
    flags = ["init", "--collection", str(collection), "--source", "./drop", "--batches", "keys",
             "--filename-regex", REGEX]

    added = cli(*flags, cwd=workdir)
    assert added.returncode == 0, added.stderr
    text = (workdir / "pipelines.yaml").read_text()
    assert existing in text and text.startswith("# yaml-language-server: $schema=./pipelines.schema.json\n")
    names = [p.name for p in load_pipeline_file(workdir / "pipelines.yaml")[0].pipelines]
    assert names == ["old", f"test_collection_{collection}"]

    again = cli(*flags, "--name", "old", cwd=workdir)
    assert again.returncode == 2 and again.stderr.count("\n") == 1
    assert "--name 'old': pipelines.yaml already has a pipeline named 'old'" in again.stderr
    assert (workdir / "pipelines.yaml").read_text() == text


@pytest.mark.parametrize(("flags", "message"), [
    ([], "--collection is needed (stdin is not a terminal"),
    (["--collection", "999999"], "--collection 999999: data collection 999999 cannot be read"),
    (["--collection", "{c}", "--source", "./nowhere"], "--source './nowhere': source './nowhere' does not exist"),
    (["--collection", "{c}", "--source", "./drop", "--storage", "77"], "--storage '77': storage 77 cannot be read"),
])
def test_a_wrong_or_missing_flag_is_one_line_naming_it_and_nothing_is_written(workdir, collection, flags, message):
    flat_batch(workdir / "drop")
    ran = cli("init", *[f.format(c=collection) for f in flags], cwd=workdir)
    assert ran.returncode == 2, ran.stdout + ran.stderr
    assert message in ran.stderr and ran.stderr.count("\n") == 1 and "Traceback" not in ran.stderr
    assert not (workdir / "pipelines.yaml").exists()


def test_without_working_credentials_init_says_how_to_log_in(workdir, synapse_env, monkeypatch):
    monkeypatch.setenv("SYNAPSE_ACCESS_TOKEN", "not-the-token-1")
    ran = cli("init", cwd=workdir)
    assert ran.returncode == 2
    assert "FAIL  synapse token:" in ran.stdout and "rejected the access token from the environment" in ran.stdout
    assert "run 'synapse login'" in ran.stderr and "not-the-token-1" not in ran.stdout + ran.stderr
    assert not (workdir / "pipelines.yaml").exists()


@pytest.mark.parametrize(("regex", "problem"), [
    ("(?P<age>\\d+", "not a regular expression"),
    ("\\d+", "no named group"),
    ("(?P<age>Q\\d+)", "finds nothing in the sampled names"),
    ("(?P<age>\\d+)_", None),
    ("", None),
])
def test_init_takes_a_regex_only_when_it_can_give_fields(regex, problem):
    found = regex_problem(regex, ["P0001_34_F.png", "P0001_34_F.json"])
    assert (found is None) if problem is None else (problem in found)
