"""Progress a person can watch: the core's progress events climb to the batch's totals during a real ingest, a
terminal draws them as a bar, and a pipe gets no bar at all."""

from __future__ import annotations

import re

import dagster as dg
import pexpect
import pytest
import yaml

from synapse_dagster.cli.main import main as cli_main
from synapse_dagster.core.watchers import Listing, Sending, listening
from synapse_dagster_tests.cli.ingest_hosts import IngestHost, make_host, write_batch

UNITS = 6
TERMINAL_ENV = ("FORCE_COLOR", "NO_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "COLUMNS", "LINES")


def test_listeners_hear_the_listing_and_the_upload_climb_to_the_batch_totals(tmp_path, synapse_env, collection,
                                                                             monkeypatch):
    folder = tmp_path / "incoming" / "b001"
    write_batch(folder, UNITS, 1, "listener")
    pipelines = tmp_path / "pipelines.yaml"
    pipelines.write_text(yaml.safe_dump({"pipelines": [{
        "name": "watched", "data_collection": collection, "storage": 1, "source": {"path": "./incoming"},
        "metadata": {"key_column": "patient_id"}}]}))
    monkeypatch.setenv("SYNAPSE_DAGSTER_STATE_DIR", str(tmp_path / "state"))
    heard: list = []
    with dg.instance_for_test(), listening(heard.append):
        assert cli_main(["ingest", "--pipelines", str(pipelines), "--pipeline", "watched", "--batch", "b001"]) == 0
    on_disk = [p for p in folder.rglob("*") if p.is_file()]
    data = [p for p in on_disk if p.name != "meta.xlsx"]  # the sheet describes the units; it is not uploaded
    listing = [e for e in heard if isinstance(e, Listing)]
    assert listing[-1].done and listing[-1].source.endswith("incoming/b001")
    assert (listing[-1].files, listing[-1].bytes) == (len(on_disk), sum(p.stat().st_size for p in on_disk))
    sending = [e for e in heard if isinstance(e, Sending)]
    assert {(e.files, e.bytes) for e in sending} == {(len(data), sum(p.stat().st_size for p in data))}
    assert (sending[0].files_done, sending[0].bytes_done) == (0, 0)  # the totals come before the first slice
    done = [(e.files_done, e.bytes_done) for e in sending]
    assert all(f0 <= f1 and b0 <= b1 for (f0, b0), (f1, b1) in zip(done, done[1:])), done
    assert done[-1] == (sending[-1].files, sending[-1].bytes)


def ingest_host(tmp_path, collection: int, name: str, **settings) -> IngestHost:
    write_batch(tmp_path / "incoming" / "b001", UNITS, 2, name)
    host = make_host(tmp_path, pipeline=name, collection=collection, source={"path": "./incoming"}, **settings)
    for variable in TERMINAL_ENV:
        host.env.pop(variable, None)
    return host


@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")  # pexpect's forkpty
def test_a_terminal_sees_the_bar_with_files_bytes_and_rate(tmp_path, synapse_env, collection):
    """The PUTs are held a little, two at a time, so the bar is drawn while nothing has landed yet, and again at
    the end; none of it lands in the run's compute log, which Dagster captures from the same stderr."""
    host = ingest_host(tmp_path, collection, "bar", upload_max_workers=2)
    command = host.command("b001")
    synapse_env.set_faults([{"match": {"method": "PUT", "path": "^_storage/upload/"}, "action": "latency",
                             "latency_ms": 250}])
    try:
        child = pexpect.spawn(command[0], command[1:], env={**host.env, "TERM": "xterm-256color"},
                              cwd=str(host.root), dimensions=(30, 160), encoding="utf-8", timeout=300)
        child.expect(pexpect.EOF)
        child.close()
    finally:
        synapse_env.set_faults([])
    output = child.before
    assert child.exitstatus == 0, output
    assert "\x1b[?25l" in output  # rich's live display hides the cursor while it redraws
    assert re.search(r"listed \S*incoming/b001: 13 files, [\d.]+ KiB", output), output
    assert f"0/{2 * UNITS} files" in output and f"{2 * UNITS}/{2 * UNITS} files" in output, output
    assert re.search(r"[\d.]+/[\d.]+ KiB", output) and re.search(r"[\d.]+ (B|KiB|MiB)/s", output), output
    captured = [p.read_text() for p in (host.root / "dagster_home" / "storage").rglob("compute_logs/*.err")]
    assert captured and not any("uploading" in text or "\x1b[" in text for text in captured)


def test_a_pipe_gets_no_bar_even_with_force_color(tmp_path, synapse_env, collection):
    host = ingest_host(tmp_path, collection, "piped")
    host.env["FORCE_COLOR"] = "1"  # set by many CI systems: rich would take the log for a terminal
    done = host.run("b001")
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "\x1b[" not in output and "uploading" not in output, output
    assert not re.search(r"listed \S+: \d+ files|[\d.]+ (B|KiB|MiB)/s", output), output
    assert f"data units created: {UNITS}" in done.stdout

