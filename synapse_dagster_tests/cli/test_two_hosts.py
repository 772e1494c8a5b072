"""Two hosts of one deployment: separate working directories, Dagster homes and local state, sharing only the
Postgres ledger and Synapse (and reading the same bucket). Whichever host runs a batch, and however often, each
unit and each data file lands once."""

from __future__ import annotations

from collections import Counter

from synapse_dagster_tests.cli.ingest_hosts import make_host, reported, write_batch

UNITS = 24
BATCHES = ("b001", "b002")


def test_two_hosts_sharing_postgres_deliver_each_unit_once(tmp_path, synapse_env, collection, s3_server,
                                                             postgres_server, monkeypatch):
    bucket = s3_server.new_bucket("fleet")
    for i, batch in enumerate(BATCHES):
        write_batch(tmp_path / "data" / batch, UNITS, 300 + i, "fleet")
        for path in sorted((tmp_path / "data" / batch).rglob("*")):
            if path.is_file():
                s3_server.put(bucket, f"incoming/{path.relative_to(tmp_path / 'data').as_posix()}", path.read_bytes())
    monkeypatch.setenv("TEST_S3_KEY", s3_server.access_key)
    monkeypatch.setenv("TEST_S3_SECRET", s3_server.secret_key)
    source = {"path": f"s3://{bucket}/incoming", "connection": {
        "endpoint_url": s3_server.endpoint, "region": s3_server.region,
        "secrets_from_env": {"access_key": "TEST_S3_KEY", "secret_key": "TEST_S3_SECRET"}}}
    ledger_url = postgres_server.new_database("fleet")
    a, b = (make_host(tmp_path / name, pipeline="fleet", collection=collection, source=source,
                      env={"SYNAPSE_DAGSTER_LEDGER_URL": ledger_url}, creating_data_unit_batch_size=5,
                      upload_max_workers=2) for name in ("host-a", "host-b"))
    files_before = synapse_env.stats()["counts"]["data_files"]
    synapse_env.set_faults([{"match": {"method": "PUT", "path": "^_storage/upload/"}, "action": "latency",
                             "latency_ms": 40}])  # so the runs overlap for certain
    try:
        # At once: both hosts take b001, host b also takes b002.
        runs = [a.start("b001"), b.start("b001"), b.start("b002")]
        outputs = [r.communicate(timeout=300)[0] for r in runs]
    finally:
        synapse_env.set_faults([])
    assert [r.returncode for r in runs] == [0, 0, 0], outputs
    assert sorted(reported(o, "data units created") for o in outputs[:2]) == [0, UNITS], outputs  # one host did b001, once
    assert reported(outputs[2], "data units created") == UNITS
    # Later host a runs b002, which host b did: its own state knows nothing, the shared ledger knows it all.
    again = a.start("b002")
    output = again.communicate(timeout=300)[0]
    assert again.returncode == 0 and reported(output, "data units created") == 0, output
    assert reported(output, "files uploaded") == 0, output
    landed = Counter(u["meta"]["dataset_key"] for u in synapse_env.units(collection))
    assert len(landed) == 2 * UNITS and set(landed.values()) == {1}, landed
    assert synapse_env.stats()["counts"]["data_files"] - files_before == 2 * 2 * UNITS
    assert postgres_server.password not in "".join(outputs) + output
    assert not list((a.root / "state").glob("ledger*")) and not list((b.root / "state").glob("ledger*"))  # no local ledger
