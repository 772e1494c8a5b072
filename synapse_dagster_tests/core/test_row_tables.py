"""Batch tables: a sequence on disk that reads back exactly what was written, in flat memory."""

from __future__ import annotations

import pickle

import pytest

from synapse_dagster.core.sources.files import FILE_CODEC, SourceFile
from synapse_dagster.core.tables.folders import step_spill
from synapse_dagster.core.tables.row_table import FLUSH, Spill


def files(n: int, bad_at: int | None = None) -> list[SourceFile]:
    out = [SourceFile(f"/src/U{i}/a.png", f"U{i}/a.png", i, 10 * i) for i in range(n)]
    if bad_at is not None:  # a local name that is not UTF-8 arrives as a surrogate escape
        out[bad_at] = SourceFile("/src/caf\udce9.png", "caf\udce9.png", 1, 2, refused_reason="is not valid UTF-8")
    return out


def test_rows_come_back_as_written_with_len_slices_and_indexes(tmp_path):
    written = files(FLUSH + 7)
    table = Spill(tmp_path).table("inventory", FILE_CODEC, iter(written))
    assert len(table) == len(written)
    assert list(table) == written and table == written
    assert table[0] == written[0] and table[-1] == written[-1] and table[FLUSH] == written[FLUSH]
    assert table[3:9] == written[3:9] and table[-2:] == written[-2:] and table[::1000] == written[::1000]
    with pytest.raises(IndexError):
        table[len(written)]


def test_a_name_that_is_not_utf8_is_kept_exactly_and_nothing_is_written_twice(tmp_path):
    written = files(50, bad_at=30)
    table = Spill(tmp_path).table("inventory", FILE_CODEC, written)
    assert len(table) == 50 and len(list(table)) == 50
    assert table[30].relative_path == "caf\udce9.png" and list(table) == written


def test_filters_and_orders_run_in_sqlite(tmp_path):
    written = files(100)
    table = Spill(tmp_path).table("inventory", FILE_CODEC, written)
    small = table.where("size < ?", (10,))
    assert len(small) == 10 and list(small) == written[:10] and small[-1] == written[9]
    assert [f.size for f in table.ordered("size desc")][:3] == [99, 98, 97]
    assert table.repeated("relative_path") == {}


def test_a_table_pickles_as_its_handle_not_its_rows(tmp_path):
    table = Spill(tmp_path).table("inventory", FILE_CODEC, files(20_000))
    handle = pickle.dumps(table)
    assert len(handle) < 1000
    assert pickle.loads(handle) == table


def test_a_temporary_spill_is_removed_when_its_tables_are_gone():
    table = Spill().table("inventory", FILE_CODEC, files(3))
    folder = table.path.parent
    assert folder.exists()
    del table
    import gc

    gc.collect()
    assert not folder.exists()


def test_a_removed_table_names_the_fix(tmp_path):
    table = Spill(tmp_path).table("inventory", FILE_CODEC, files(3))
    table.drop()
    with pytest.raises(FileNotFoundError, match="materialize its asset again"):
        list(table)


def test_only_the_newest_materializations_of_an_asset_are_kept(tmp_path):
    import os
    import time

    for n in range(5):
        spill = step_spill(tmp_path, pipeline="p", batch="b", asset="source_inventory", run_id=f"run{n}")
        spill.table("inventory", FILE_CODEC, files(2))
        os.utime(spill.folder, (time.time() + n, time.time() + n))
    kept = sorted(p.name for p in (tmp_path / "p" / "b" / "source_inventory").iterdir())
    assert kept == ["run2", "run3", "run4"]
