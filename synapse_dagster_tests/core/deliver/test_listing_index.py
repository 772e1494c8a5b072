"""The key index's listing reads: whole the first time, then only the tail, and whole again whenever the
server's order cannot be trusted. Against the sandbox through the real client, and against listings in orders
the sandbox never produces."""

from __future__ import annotations

import math
from pathlib import Path

from synapse_dagster.core.deliver.listing_index import ListingMark, read_new
from synapse_dagster.core.deliver.unit_contents import indexed_unit


def create(sandbox, tmp_path, collection: int, keys: list[str]) -> None:
    png, label = tmp_path / "a.png", tmp_path / "a.json"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + tmp_path.name.encode())
    label.write_text("{}")
    results = sandbox.client().upload_files_bulk([png, label], strategy="presigned").results
    files = {spec: {"checksum": r.checksum, "path": Path(r.file_key).name}
             for spec, r in zip(("image_1", "label_1"), sorted(results, key=lambda r: not r.file_key.endswith(".png")))}
    meta = {"patient_id": "P0001", "age": 40, "sex": "F"}
    sandbox.client().create_data_units([{"data_collection": collection, "files": files,
                                         "meta": {**meta, "dataset_key": k}} for k in keys])


def read(client, collection: int, mark: ListingMark | None, page_size: int):
    seen: list[tuple[str, int]] = []
    pages = lambda number, size: client.list_data_units(  # noqa: E731
        params={"data_collection": collection, "page": number, "page_size": size})
    listing = read_new(pages, mark, seen.extend, indexed_unit, page_size=page_size)
    return listing, {unit.dataset_key: unit_id for unit, unit_id in seen}


def test_a_full_read_then_only_the_tail(sandbox, collection, tmp_path):
    create(sandbox, tmp_path, collection, [f"k{i}" for i in range(95)])
    first, keys = read(sandbox.client(), collection, None, page_size=10)
    assert first.full and len(keys) == 95 and first.pages == 10
    assert first.mark.seen == 95 and first.mark.last_id == max(keys.values())
    create(sandbox, tmp_path, collection, ["new-1", "new-2", "new-3"])
    tail, keys = read(sandbox.client(), collection, first.mark, page_size=10)
    assert not tail.full and {"new-1", "new-2", "new-3"} <= set(keys)
    assert tail.pages <= 3 and tail.units <= 3 * 10  # one page before the mark, its page, the new one
    assert tail.mark.seen == 98


class PagedListing:
    """A server's listing in any order, paged as DRF does (404 past the end)."""

    def __init__(self, units: list[dict]) -> None:
        self.units = units

    def list_data_units(self, params=None, **kwargs):
        size, number = params["page_size"], params["page"]
        if (number - 1) * size >= max(1, len(self.units)) and number > 1:
            raise type("NotFound", (Exception,), {"status_code": 404})("Invalid page.")
        results = self.units[(number - 1) * size: number * size]
        more = number * size < len(self.units)
        return {"count": len(self.units), "results": results, "next": "more" if more else None}


def units(ids, prefix="u"):
    return [{"id": i, "meta": {"dataset_key": f"{prefix}{i}"}} for i in ids]


def test_deleted_units_before_the_mark_are_stepped_over():
    server = PagedListing(units(range(1, 101)))
    first, _ = read(server, 1, None, page_size=10)
    del server.units[10:40]  # 30 units deleted: the mark's unit moves three pages earlier
    server.units += units(range(101, 104))
    tail, keys = read(server, 1, first.mark, page_size=10)
    assert not tail.full and {"u101", "u102", "u103"} <= set(keys)


def test_an_order_that_is_not_by_ascending_id_means_a_full_read():
    server = PagedListing(units(range(1, 51)))
    first, _ = read(server, 1, None, page_size=10)
    server.units = units(range(60, 0, -1))  # newest first: no tail to read
    again, keys = read(server, 1, first.mark, page_size=10)
    assert again.full and len(keys) == 60 and again.mark is None  # and no mark to trust next time


def test_a_mark_far_past_the_end_means_a_full_read():
    server = PagedListing(units(range(1, 21)))
    listing, keys = read(server, 1, ListingMark(seen=10_000, last_id=10_000), page_size=10)
    assert listing.full and len(keys) == 20
    assert listing.pages == math.ceil(20 / 10) + 4  # four pages tried back from the mark, then the full read
