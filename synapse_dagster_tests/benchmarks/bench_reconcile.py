"""What reconciliation costs on a big collection: finding a chunk's units by dataset_key (not a test).

The v1 API offers no filter on meta. The first reconciliation against a collection lists it whole into the
ledger's key index; later ones read only the tail since the index's mark. This prints, against a collection of
N existing units in the project's sandbox, the time to create one chunk of 100 units bare (the baseline), with
``create_units`` on an empty ledger (a full read first), and with ``create_units`` again (a tail read), all
measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import tempfile
import time
from pathlib import Path

from synapse_dagster_tests.benchmarks.table import Figure, Row, print_table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--units", type=int, default=100_000)
    args = parser.parse_args(argv)
    print_table(rows(args.units))
    return 0


def rows(units: int = 100_000) -> list[Row]:
    """Creating a chunk of 100 on a collection of ``units``: bare, then through the ledger twice."""
    from synapse_dagster.core.deliver.creation import UnitRequest, create_units
    from synapse_dagster.core.deliver.ledger import Ledger
    from synapse_dagster.core.synapse.transport import guard_creates
    from synapse_sandbox.demo_data import demo_seed
    from synapse_sandbox.server import start_sandbox_process
    from synapse_sdk.clients.backend import BackendClient

    with tempfile.TemporaryDirectory() as tmp:
        data_dir, token = Path(tmp), secrets.token_urlsafe(12)
        seed = data_dir / "seed.json"
        seed.write_text(json.dumps(demo_seed(str(data_dir / "storage"))))
        with start_sandbox_process(data_dir / "sbx", token, seed=seed) as sandbox:
            client = guard_creates(BackendClient(base_url=sandbox.url, access_token=token, timeout={"connect": 5, "read": 300}))
            png, label = data_dir / "a.png", data_dir / "a.json"
            png.write_bytes(b"\x89PNG\r\n\x1a\n" + b"0" * 64)
            label.write_text("{}")
            results = client.upload_files_bulk([png, label], strategy="presigned").results
            checksums = {Path(r.file_key).suffix: r.checksum for r in results}
            files = {"image_1": {"checksum": checksums[".png"], "path": "a.png"},
                     "label_1": {"checksum": checksums[".json"], "path": "a.json"}}
            meta = lambda i: {"patient_id": f"P{i % 10000:04d}", "age": 40, "sex": "F", "dataset_key": f"bench/{i}"}  # noqa: E731
            started = time.perf_counter()
            for start in range(0, units, 1000):
                client.create_data_units([{"data_collection": 1, "files": files, "meta": meta(i)}
                                          for i in range(start, min(start + 1000, units))])
            seeding = time.perf_counter() - started
            t0 = time.perf_counter()
            client.create_data_units([{"data_collection": 1, "files": files, "meta": meta(units + i)} for i in range(100)])
            chunk = time.perf_counter() - t0
            with Ledger(data_dir / "ledger.sqlite3") as ledger:
                timings, reports = [], []
                for n in (1, 2):
                    wanted = [UnitRequest(f"bench/{units + 100 * n + i}", files, meta(units + 100 * n + i))
                              for i in range(100)]
                    t0 = time.perf_counter()
                    reports.append(create_units(client, 1, wanted, ledger=ledger, target=sandbox.url, batch="b"))
                    timings.append(time.perf_counter() - t0)
    first, second = timings
    print(f"seeded {units:,} units in {seeding:.1f}s", file=sys.stderr)
    topic = f"reconcile a chunk of 100 units on a {units:,}-unit collection"
    bare = "bare create of the chunk"
    return [Row(topic, "create_units, empty ledger", bare, wall=Figure(first, chunk, "s"),
                detail=f"a full read of {reports[0].units_listed:,} units into the key index first"),
            Row(topic, "create_units again", bare, wall=Figure(second, chunk, "s"),
                detail=f"a tail read of {reports[1].units_listed:,} units, the chunk's creation included")]


if __name__ == "__main__":
    raise SystemExit(main())
