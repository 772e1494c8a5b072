"""A batch materialized the way an operator does it: clicked through the Dagster UI in headless Chromium (Playwright).

The batch is only registered beforehand (``batches --register``); the run is launched from the asset graph's
"Materialize all" dialog, followed on its run page, and then the outcome is checked twice: the units in the
Synapse sandbox, and what the UI shows of them (the batch report on ``created_units``, the units chart of
``validated_meta`` drawn as an image).

The UI is dagster-webserver alone, on an instance whose ``run_coordinator`` is the ``DefaultRunCoordinator``:
a launch starts the run at once in a process of the code server. ``dagster dev`` would add the daemon, needed
only for the default queue: one more process to start and import on a 2-core machine, and a launch that waits
for the daemon's next dequeue tick. A single partition is one run, not a backfill, so no daemon is needed.

Screenshots of each step go to ``test-artifacts/ui/`` at the repo root (``$SYNAPSE_DAGSTER_TEST_ARTIFACTS/ui/``
when set), kept after the test for a person to look at. Needs Debian's ``chromium``; skipped without it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
import yaml

from synapse_dagster_tests.servers.dagster_ui import dagster_home, dagster_webserver
from synapse_sandbox.demo_data import generate_batch

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium not installed (apt-get install chromium)")
# Without the background-networking flags Chromium keeps calling Google's services on a closed network.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
PIPELINE, BATCH = "uilaunch", "b001"
ASSETS = ("collection_specs", "source_inventory", "grouped_data_units", "validated_meta", "uploaded_files",
          "created_units")
UI_TIMEOUT_MS = 60_000  # one page or dialog to show up on a busy 2-core machine
RUN_TIMEOUT_MS = 300_000  # the whole run; about 25 s when the machine is idle
FAILURE_SHOT = "99-failure"


def artifacts_dir() -> Path:
    root = os.environ.get("SYNAPSE_DAGSTER_TEST_ARTIFACTS") or Path(__file__).resolve().parents[2] / "test-artifacts"
    folder = Path(root) / "ui"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def batch(tmp_path) -> dict:
    """The batch folder; returns what a correct ingestion must produce."""
    return generate_batch(tmp_path / "incoming" / BATCH, units=6, seed=2, image_size=8)


@pytest.fixture
def pipeline_env(tmp_path, synapse_env, collection, batch) -> dict[str, str]:
    """A pipeline on a fresh collection, a Dagster home that runs launches at once, and the batch registered as
    a partition (settle_seconds 0: the folder was just written)."""
    config = {"name": PIPELINE, "data_collection": collection, "storage": 1, "source": {"path": "./incoming"},
              "metadata": {"key_column": "patient_id"}, "batches": {"settle_seconds": 0}}
    (tmp_path / "pipelines.yaml").write_text(yaml.safe_dump({"pipelines": [config]}))
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home(tmp_path / "dagster_home", run_now=True)),
           "SYNAPSE_DAGSTER_PIPELINES": str(tmp_path / "pipelines.yaml"),
           "SYNAPSE_DAGSTER_STATE_DIR": str(tmp_path / "state")}
    registered = subprocess.run([sys.executable, "-m", "synapse_dagster.cli", "batches", "--pipeline", PIPELINE,
                                 "--register"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert registered.returncode == 0, registered.stdout + registered.stderr
    with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        assert instance.get_dynamic_partitions(f"{PIPELINE}_batches") == [BATCH]
    return env


@pytest.fixture
def page() -> Iterator:
    """A page of Debian's Chromium (Playwright's own browsers are not downloaded)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.set_default_timeout(UI_TIMEOUT_MS)
            yield page
        finally:
            browser.close()


# Dialogs and popovers fade in and out; a screenshot taken during a fade shows the page behind through them.
ANIMATIONS_DONE = ("() => document.getAnimations().every(a => a.playState !== 'running'"
                   " || a.effect?.getComputedTiming().endTime === Infinity)")  # spinners never end


def shoot(page, name: str) -> Path:
    page.wait_for_function(ANIMATIONS_DONE, timeout=10_000)
    path = artifacts_dir() / f"{name}.png"
    page.screenshot(path=str(path))
    return path


def launch_from_graph(page, base: str) -> str:
    """Asset graph → Materialize all → pick the batch → Launch 1 run; returns the run ID the toast links to."""
    page.goto(f"{base}/asset-groups/{PIPELINE}")
    for name in ASSETS:
        page.get_by_text(name, exact=True).first.wait_for()
    page.wait_for_timeout(1000)  # the graph zooms to fit after its nodes show
    shoot(page, "01-asset-graph")
    page.get_by_role("button", name="Materialize all").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_text("Select a partition or create one").click()
    # The list is a popover outside the dialog; each item names its partition in a title attribute.
    page.get_by_role("menuitem").filter(has=page.get_by_title(BATCH, exact=True)).click()
    dialog.get_by_text("Launch runs to materialize 6 assets").click()  # closes the popover, keeps the dialog
    page.get_by_placeholder("Filter partitions").wait_for(state="hidden")
    launch = dialog.get_by_role("button", name="Launch 1 run")
    launch.wait_for()
    shoot(page, "02-launch-dialog")
    launch.click()
    view = page.locator('a[href^="/runs/"]', has_text="View")  # the "Launched run …" toast
    view.wait_for()
    run_id = view.get_attribute("href").rsplit("/", 1)[-1]
    view.click()
    return run_id


def wait_for_run_end(page, run_id: str) -> str:
    """The run page's status tag once it shows an end state."""
    page.wait_for_url(f"**/runs/{run_id}")
    status = page.get_by_text(re.compile(r"^(Success|Failure|Canceled)$")).first
    status.wait_for(timeout=RUN_TIMEOUT_MS)
    page.get_by_text(f"partition: {BATCH}").wait_for()
    shoot(page, "03-run-succeeded")
    return status.inner_text()


def open_markdown(page, base: str, asset: str, entry: str):
    """The latest materialization of ``asset`` on its Events tab, with the long markdown ``entry`` opened."""
    page.goto(f"{base}/assets/{PIPELINE}/{asset}?view=events")
    page.locator("tr", has_text=entry).get_by_text("[Show Markdown]").click()
    return page.get_by_role("dialog")


def check_batch_report(page, base: str, collection_url: str, valid: list[str]) -> None:
    report = open_markdown(page, base, "created_units", "batch_report")
    report.get_by_role("heading", name=f"Batch {BATCH}").wait_for()
    text = report.inner_text()
    assert re.search(rf"units created\s+{len(valid)}\b", text), text
    assert f"Sample units ({len(valid)} of {len(valid)} in Synapse)" in text, text
    assert all(f"{BATCH}/{pid}" in text for pid in valid), text
    link = report.get_by_role("link", name="Open the data collection in Synapse")
    assert link.get_attribute("href") == collection_url
    shoot(page, "04-batch-report")


def check_units_chart(page, base: str) -> dict:
    """The chart is an SVG in a data: URI; naturalWidth > 0 only once the browser decoded and drew it."""
    chart = open_markdown(page, base, "validated_meta", "units_chart").locator('img[src^="data:image/svg+xml"]')
    chart.wait_for()
    drawn = chart.evaluate("img => img.decode().then(() => ({width: img.naturalWidth, height: img.naturalHeight, "
                           "shown: img.getBoundingClientRect().width, alt: img.alt}))")
    shoot(page, "05-units-chart")
    return drawn


def test_a_batch_launched_from_the_ui_lands_and_its_report_and_chart_render(tmp_path, synapse_env, collection,
                                                                           batch, pipeline_env, page):
    (artifacts_dir() / f"{FAILURE_SHOT}.png").unlink(missing_ok=True)  # a stale one would tell of an old failure
    with dagster_webserver(pipeline_env, tmp_path, log=tmp_path / "webserver.log") as base:
        try:
            run_id = launch_from_graph(page, base)
            assert wait_for_run_end(page, run_id) == "Success", (tmp_path / "webserver.log").read_text()[-4000:]
            check_batch_report(page, base, f"{synapse_env.url}/data_collections/{collection}/", batch["valid"])
            chart = check_units_chart(page, base)
        except Exception:
            page.screenshot(path=str(artifacts_dir() / f"{FAILURE_SHOT}.png"))  # where the UI stood when it gave up
            raise
    assert chart["width"] > 0 and chart["height"] > 0 and chart["shown"] > 0, chart
    # The plan counts the unit whose label trips the SDK's content guard as valid: it is caught at upload.
    planned_valid = len(batch["valid"]) + list(batch["invalid"].values()).count("unsafe")
    assert chart["alt"].startswith(f"Units: {planned_valid} valid"), chart
    units = synapse_env.units(collection)
    assert sorted(u["meta"]["patient_id"] for u in units) == sorted(batch["valid"]) and len(units) == 3
    with dg.DagsterInstance.from_config(pipeline_env["DAGSTER_HOME"]) as instance:  # the run the UI launched
        run = instance.get_run_by_id(run_id)
        assert run.status == dg.DagsterRunStatus.SUCCESS and run.tags["dagster/partition"] == BATCH
        assert len(instance.get_runs()) == 1
