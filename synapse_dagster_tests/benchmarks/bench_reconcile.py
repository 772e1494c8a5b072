"""What one reconciliation costs on a big collection: finding a chunk's units by dataset_key (not a test).

The v1 API offers no filter on meta, so a lookup lists the whole collection. This prints the time to list
N existing units (the cost of one reconciliation) against the time to create one chunk of 100, both measured
in the same run against the project's sandbox.
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

    from synapse_dagster.core.deliver.creation import server_units_by_key
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
            t0 = time.perf_counter()
            listed = sum(1 for _ in server_units_by_key(client, 1))
            reconcile = time.perf_counter() - t0
    print(f"seeded {args.units:,} units in {seeding:.1f}s")
    print(f"create one chunk of 100 units      : {chunk * 1000:8.1f} ms")
    print(f"one reconciliation (list {listed:,} units): {reconcile * 1000:8.1f} ms ({reconcile / chunk:.0f}x a chunk)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
