"""A run resolves its sources once: one ``get_storage`` for a storage-relative source, one check of the batch folder.

Counted where it happens: the sandbox's own request counter for ``GET storages/<id>/``, and every ``check`` the
S3 store answers. Before the sources had one home, the same run asked for the storage 4 times and checked the
batch folder twice.
"""

from __future__ import annotations

from synapse_dagster.core.sources import s3
from synapse_dagster_tests.defs.test_remote_ingest_end_to_end import (
    assert_landed,
    local_batch,
    run_pipeline,
    seed_s3_storage,
    upload_tree,
)

STORAGE_ROUTE = "GET storages/<int:pk>/"


def test_storage_fetched_once_and_batch_checked_once(tmp_path, synapse_env, collection, s3_server, monkeypatch):
    root, expected = local_batch(tmp_path)
    bucket = s3_server.new_bucket("once")
    upload_tree(root, lambda key, data: s3_server.put(bucket, f"datasets/xray/{key}", data))
    seed_s3_storage(synapse_env, s3_server, 8, bucket)
    checked: list[str] = []
    real_check = s3.S3Store.check

    def counting_check(self, location, **kwargs):
        checked.append(location.uri)
        return real_check(self, location, **kwargs)

    monkeypatch.setattr(s3.S3Store, "check", counting_check)
    before = synapse_env.stats()["requests"].get(STORAGE_ROUTE, 0)
    result, _ = run_pipeline(tmp_path, collection, {"storage": 8, "source": {"path": "datasets/xray"}})
    assert result.success
    assert_landed(synapse_env, collection, root, expected)
    assert synapse_env.stats()["requests"].get(STORAGE_ROUTE, 0) - before == 1
    assert checked == [f"s3://{bucket}/datasets/xray/{result.dagster_run.tags['dagster/partition']}/"]
