"""A batch from a real local Azure Blob Storage (Azurite) into the sandbox, through Dagster and the real SDK client.

The pipeline file names the account and endpoint and only the environment variable holding the key; the bytes that
land must be the container's bytes, and the key must not reach the event log.
"""

from __future__ import annotations

from synapse_dagster_tests.defs.test_remote_ingest_end_to_end import (
    BATCH,
    assert_landed,
    local_batch,
    run_pipeline,
    upload_tree,
)


def test_azure_batch_lands_byte_identical(tmp_path, synapse_env, collection, azurite_server, monkeypatch):
    root, expected = local_batch(tmp_path)
    container = azurite_server.new_container("ingest")
    upload_tree(root, lambda key, data: azurite_server.put(container, f"incoming/{key}", data))
    monkeypatch.setenv("TEST_AZURE_KEY", azurite_server.account_key)
    connection = {"azure_endpoint": azurite_server.endpoint, "azure_account_name": azurite_server.account_name,
                  "secrets_from_env": {"azure_account_key": "TEST_AZURE_KEY"}}
    result, logs = run_pipeline(tmp_path, collection, {"source": {"path": f"az://{container}/incoming",
                                                                  "connection": connection}})
    assert result.success, logs[-3000:]
    assert_landed(synapse_env, collection, root, expected)
    assert azurite_server.account_key not in logs
    inventory = result.output_for_node("remote__source_inventory")
    assert inventory.files and all(
        f.uri.startswith(f"az://{container}/incoming/{BATCH}/") and len(f.etag or "") == 32 for f in inventory.files
    )
