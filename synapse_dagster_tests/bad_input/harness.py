"""One bad input at a time, in a batch of five good units, through the whole graph into the sandbox.

Each case asserts three things: what the user reads (the report the CLI prints, and the run's log) names the bad
thing, no traceback is in it, and the five good units landed (counted in the sandbox). ``between`` runs the graph
in two runs with a change to the source in between, the way a drop that is still being written changes under a
running batch.
"""

from __future__ import annotations

import io
import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg
import yaml

from synapse_dagster.cli.report import print_report
from synapse_dagster.cli.runs import step_failures
from synapse_dagster.config.loading import parse_pipeline_file
from synapse_dagster.definitions import build_definitions
from synapse_dagster.defs.pipeline import ASSET_NAMES
from synapse_sandbox.demo_data import META_SCHEMA, png_bytes

GOOD = ("P0001", "P0002", "P0003", "P0004", "P0005")
BATCH = "b1"
PIPELINE = "bad"
PNG = png_bytes(8, 8, random.Random(1))
_ids = itertools.count(5000)


def seed_collection(sandbox, schema: dict[str, Any] | None = META_SCHEMA) -> int:
    """A collection with an image and a label (both required) and an optional extra file."""
    collection = next(_ids)
    sandbox.seed({"data_collections": [{
        "id": collection, "name": f"bad input {collection}",
        "file_specifications": [
            {"name": "image_1", "file_type": "image", "extensions": [".png", ".jpg", ".jpeg"], "is_required": True,
             "is_primary": True},
            {"name": "label_1", "file_type": "data", "extensions": [".json", ".yaml", ".yml"], "is_required": True},
            {"name": "extra", "file_type": "data", "extensions": [".xml", ".gif"], "is_required": False},
        ],
        "meta": {"data_unit_meta_schema": schema} if schema else {},
    }]})
    return collection


def unit_files(folder: Path, image: bytes = PNG, label: str = '{"boxes": []}') -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "scan.png").write_bytes(image)
    (folder / "label.json").write_text(label)


def sheet_rows(ids: list[str]) -> str:
    return "patient_id,age,sex\n" + "".join(f"{pid},{40 + i},{'FM'[i % 2]}\n" for i, pid in enumerate(ids))


def good_batch(root: Path, extra_ids: tuple[str, ...] = ("P0006", "P0007", "P0008")) -> Path:
    """``root``/b1 with the five good units and a sheet that also has rows for the bad units a case adds."""
    batch = root / BATCH
    for pid in GOOD:
        unit_files(batch / pid)
    (batch / "meta.csv").write_text(sheet_rows([*GOOD, *extra_ids]))
    return batch


@dataclass
class Landing:
    text: str  # everything the user reads: the CLI's report of every run, and every log line
    units: list[dict[str, Any]]
    results: list[dg.ExecuteInProcessResult] = field(default_factory=list)

    @property
    def patient_ids(self) -> set[str]:
        return {u["meta"].get("patient_id") for u in self.units}

    @property
    def keys(self) -> set[str]:
        return {u["meta"]["dataset_key"] for u in self.units}

    def report_lines(self) -> str:
        """The report's own lines (not Dagster's event chatter), for assertion messages."""
        return "\n".join(line for line in self.text.splitlines() if line.startswith(("  ", "==")))[:6000]

    @property
    def success(self) -> bool:
        return all(r.success for r in self.results)

    def output(self, asset: str) -> Any:
        for result in reversed(self.results):
            try:
                return result.asset_value([PIPELINE, asset])
            except Exception:  # noqa: BLE001 - not in this run
                continue
        return None


Change = Callable[[], None]


def ingest(tmp_path: Path, sandbox, collection: int, *, source: dict | None = None, between: tuple[str, Change] | None = None,
           batch: str = BATCH, **config: Any) -> Landing:
    """Run the batch (in two runs around ``between``: after the named asset, apply the change)."""
    pipeline = {"name": PIPELINE, "data_collection": collection, "storage": 1,
                "source": source or {"path": "./incoming"}, "pattern": "nested",
                "metadata": {"key_column": "patient_id"}, **config}
    if "assets" in config:  # multi-path: one source per spec
        pipeline.pop("source")
    (tmp_path / "pipelines.yaml").write_text(yaml.safe_dump({"pipelines": [pipeline]}))
    defs = build_definitions(parse_pipeline_file({"pipelines": [pipeline]}), base_dir=tmp_path,
                             state_dir=tmp_path / "state")
    job = defs.resolve_job_def(f"{PIPELINE}_ingest")
    phases = [list(ASSET_NAMES)]
    if between is not None:
        cut = ASSET_NAMES.index(between[0]) + 1
        phases = [list(ASSET_NAMES[:cut]), list(ASSET_NAMES[cut:])]
    out, results = io.StringIO(), []
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(f"{PIPELINE}_batches", [batch])
        for number, names in enumerate(phases):
            if number == 1:
                between[1]()
            result = job.execute_in_process(instance=instance, partition_key=batch, raise_on_error=False,
                                            asset_selection=[dg.AssetKey([PIPELINE, n]) for n in names])
            results.append(result)
            print_report(result, PIPELINE, title=f"batch {batch}", out=out)
            for failure in step_failures(result):
                print(failure, file=out)
            for event in instance.all_logs(result.run_id):
                print(event.message, file=out)
                error = event.dagster_event.step_failure_data.error if (
                    event.dagster_event and event.dagster_event.is_step_failure) else None
                if error is not None and error.cls_name not in ("Failure", "DagsterAssetCheckFailedError"):  # a bug
                    print(f"Traceback: {error.to_string()}", file=out)
    return Landing(out.getvalue(), sandbox.units(collection), results)


def assert_clear(landing: Landing, *names: str, landed: tuple[str, ...] = GOOD) -> None:
    """The message names the thing, no traceback reached the user, and the good units (and only the expected
    ones) landed."""
    for name in names:
        assert name in landing.text, f"{name!r} not in what the user reads:\n{landing.report_lines()}"
    assert "Traceback" not in landing.text and "Stack Trace" not in landing.text, landing.text[-4000:]
    assert landing.patient_ids == set(landed), (sorted(landing.patient_ids), landing.text[-3000:])
