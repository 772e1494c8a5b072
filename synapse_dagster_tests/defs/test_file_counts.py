"""The materialization metadata counts refused files on their own, beside excluded junk and the other kinds."""

from synapse_dagster.core.organize.grouping import Organization, group_files
from synapse_dagster.core.organize.layouts import Pattern
from synapse_dagster.core.organize.specs import CollectionSpecs
from synapse_dagster.core.sources.files import SourceFile
from synapse_dagster.core.sources.inventory import Inventory, InventoryTally
from synapse_dagster.defs.metadata import grouped_data_units, source_inventory

SPECS = CollectionSpecs.from_api({"id": 1, "name": "scans", "file_specifications": [
    {"name": "image_1", "extensions": [".png"], "is_required": True}]})
FILES = [
    SourceFile("/b/p1/a.png", "p1/a.png", 10, 0),
    SourceFile("/b/p1/.DS_Store", "p1/.DS_Store", 5, 0, excluded_reason="system file '.DS_Store'"),
    SourceFile("/b/p2/a.png", "p2/a.png", 7, 0, refused_reason="a link that leaves the source folder"),
    SourceFile("/b/p3/.DS_Store", "p3/.DS_Store", 3, 0, excluded_reason="system file '.DS_Store'",
               refused_reason="a key with '..'"),
]


def test_refused_files_are_counted_apart_from_kept_and_excluded_files():
    tally = InventoryTally()
    listed = list(tally.counting(FILES))
    for counted in (Inventory("b", {"*": "/b"}, listed, tally), Inventory("b", {"*": "/b"}, FILES)):
        inventory = source_inventory(counted)
        assert (inventory["files"], inventory["bytes"], inventory["excluded_system_files"],
                inventory["refused_files"]) == (1, 10, 1, 2)
    grouped = grouped_data_units(group_files(FILES, SPECS, Organization(Pattern.NESTED)))
    assert (grouped["units"], grouped["excluded_files"], grouped["refused_files"]) == (1, 1, 2)
