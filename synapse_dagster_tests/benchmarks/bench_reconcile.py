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
import tempfile
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--units", type=int, default=100_000)
    args = parser.parse_args(argv)

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
            for start in range(0, args.units, 1000):
                client.create_data_units([{"data_collection": 1, "files": files, "meta": meta(i)}
                                          for i in range(start, min(start + 1000, args.units))])
            seeding = time.perf_counter() - started
            t0 = time.perf_counter()
            client.create_data_units([{"data_collection": 1, "files": files, "meta": meta(args.units + i)} for i in range(100)])
            chunk = time.perf_counter() - t0
            with Ledger(data_dir / "ledger.sqlite3") as ledger:
                timings, reports = [], []
                for n in (1, 2):
                    wanted = [UnitRequest(f"bench/{args.units + 100 * n + i}", files, meta(args.units + 100 * n + i))
                              for i in range(100)]
                    t0 = time.perf_counter()
                    reports.append(create_units(client, 1, wanted, ledger=ledger, target=sandbox.url, batch="b"))
                    timings.append(time.perf_counter() - t0)
    first, second = timings
    print(f"seeded {args.units:,} units in {seeding:.1f}s")
    print(f"create one chunk of 100 units, bare                : {chunk * 1000:8.1f} ms (1x)")
    print(f"create_units, empty ledger (full read of {reports[0].units_listed:,} units): {first * 1000:8.1f} ms "
          f"({first / chunk:.0f}x)")
    print(f"create_units again (tail read of {reports[1].units_listed:,} units)        : {second * 1000:8.1f} ms "
          f"({second / chunk:.1f}x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
