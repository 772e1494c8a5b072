"""The reviewed plan of a batch: every source merged, every problem held back, gates that warn or block."""

from pathlib import Path



from synapse_dagster.core.plan.gates import evaluate_gates
from synapse_dagster.core.organize.grouping import Organization, group_files
from synapse_dagster.core.sources.local import list_local
from synapse_dagster.core.organize.layouts import Pattern
from synapse_dagster.core.meta.sheets import read_metadata_table
from synapse_dagster.core.plan.batch_plan import FileAccess, PlanSettings, plan_batch
from synapse_dagster.core.plan.report import plan_markdown
from synapse_dagster.core.plan.screening import read_for_upload
from synapse_dagster.core.meta.sources import MetaRecipe
from synapse_dagster_tests.core.tables import PNG, sheet, specs, with_cells


def test_plan_merges_every_source_and_holds_back_bad_units(tmp_path):
    collection = specs({"name": "image_1", "extensions": [".png"], "is_required": True, "is_primary": True})
    for name in ["P001_45_male", "P002_50_female", "P003_xx_male", "P004_30_female", "P005_20_male"]:
        (tmp_path / name).mkdir()
        (tmp_path / name / f"{name}.png").write_bytes(PNG)
    (tmp_path / "P004_30_female" / "P004_30_female.png").write_bytes(b"<html><script>x</script>")
    (tmp_path / "P002_50_female" / "meta.yaml").write_text("contrast: yes\nscan_date: 2026-02-03\n")
    (tmp_path / "P005_20_male" / "meta.yaml").write_text("not: [valid")
    sheet(tmp_path / "meta.xlsx", [["folder", "weight", "age"], ["P001_45_male", 70.5, 46], ["P009", 1, 1]])
    grouping = group_files(list_local(tmp_path), collection, Organization(Pattern.NESTED, sidecars=("meta.yaml",)),
                           reserved={"meta.xlsx": "metadata sheet"})
    recipe = MetaRecipe(static={"site": "A"}, filename_regex=r"^(?P<patient_id>P\d+)_(?P<age>[^_]+)_(?P<sex>male|female)")
    settings = PlanSettings("p", "{batch}/{group_key}", recipe, max_file_bytes=2**20)
    plan = plan_batch(grouping, collection, "b1", settings, sheet=read_metadata_table(tmp_path / "meta.xlsx"),
                      access=FileAccess(look=lambda f: read_for_upload(f, Path(f.uri)).look))  # a plan may look
    units = {u.group_key: u for u in plan.units}
    assert [u.group_key for u in plan.valid_units] == ["P001_45_male", "P002_50_female"]
    assert units["P001_45_male"].meta == {"site": "A", "patient_id": "P001", "age": 46, "sex": "male",
                                          "folder": "P001_45_male", "weight": 70.5, "dataset_key": "b1/P001_45_male"}
    assert units["P001_45_male"].provenance["age"] == "sheet meta.xlsx"
    assert units["P001_45_male"].notes == ["field 'age': filename_regex says '45', sheet meta.xlsx says 46; sheet meta.xlsx wins"]
    assert units["P002_50_female"].meta["contrast"] is True and units["P002_50_female"].meta["age"] == 50
    assert units["P002_50_female"].provenance["scan_date"] == "sidecar P002_50_female/meta.yaml"
    kinds = {k: [p.kind for p in u.problems] for k, u in units.items()}
    assert kinds["P003_xx_male"] == ["invalid_meta"] and "'xx' (from filename_regex)" in units["P003_xx_male"].problems[0]
    assert kinds["P004_30_female"] == ["unsafe_file"] and "TYPE_MISMATCH" in units["P004_30_female"].problems[0]
    assert kinds["P005_20_male"] == ["invalid_meta"] and "sidecar P005_20_male/meta.yaml cannot be read" in units["P005_20_male"].problems[0]
    assert plan.sheet_rows_without_unit == ["P009"]
    assert plan.units_without_sheet_row == ["P002_50_female", "P003_xx_male", "P004_30_female", "P005_20_male"]
    report = plan_markdown(plan)
    assert "| age | `46` | sheet meta.xlsx |" in report and "problem (unsafe_file)" in report
    assert "**Sheet rows matching no unit** (1): `P009`" in report


def test_gates_warn_below_the_limit_and_block_above_it(tmp_path):
    collection = specs({"name": "image_1", "extensions": [".png"], "is_required": True},
                       {"name": "label_1", "extensions": [".json"], "is_required": True}, schema=None)
    for unit in ["u1", "u2", "u3", "u4"]:
        (tmp_path / unit).mkdir()
        (tmp_path / unit / "a.png").write_bytes(PNG)
        if unit != "u4":
            (tmp_path / unit / "a.json").write_text("{}")
    grouping = group_files(list_local(tmp_path), collection, Organization(Pattern.NESTED))
    plan = plan_batch(grouping, collection, "b", PlanSettings("p", "{group_key}"))
    relaxed = {g.name: (g.passed, g.blocking_failure) for g in evaluate_gates(plan, 0.5)}
    assert relaxed == {"required_specs_satisfied": (False, False), "meta_valid": (True, False),
                       "unsafe_files_excluded": (True, False), "files_readable_and_well_formed": (True, False),
                       "batch_is_uploadable": (True, False)}
    strict = {g.name: (g.passed, g.blocking_failure) for g in evaluate_gates(plan, 0.2)}
    assert strict["required_specs_satisfied"] == (False, True) and strict["batch_is_uploadable"] == (False, True)


def test_file_over_size_limit_is_a_problem(tmp_path):
    collection = specs({"name": "d", "extensions": [".bin"], "is_required": True}, schema=None)
    (tmp_path / "u").mkdir()
    (tmp_path / "u" / "big.bin").write_bytes(b"0" * 3000)
    grouping = group_files(list_local(tmp_path), collection, Organization(Pattern.NESTED))
    plan = plan_batch(grouping, collection, "b", PlanSettings("p", "{group_key}", max_file_bytes=2048))
    assert plan.units[0].problems == ["file u/big.bin (d) is 0.0 MiB, over the 0 MiB limit (max_file_size_mb)"]
    assert plan.units[0].problems[0].kind == "file_too_large"


def test_units_whose_template_gives_one_dataset_key_are_all_held_back(tmp_path):
    collection = _units(tmp_path, ["P10", "P11", "Q12"])
    grouping = group_files(list_local(tmp_path), collection, Organization(Pattern.NESTED))
    plan = plan_batch(grouping, collection, "b", PlanSettings("p", "{batch}/{group_key:.1}"))
    shared = {u.group_key: (u.dataset_key, [str(p) for p in u.problems if p.kind == "duplicate_dataset_key"])
              for u in plan.units}
    message = "dataset_key 'b/P' is shared by 2 units; make dataset_key_template show {group_key} whole (no format spec)"
    assert shared == {"P10": ("b/P", [message]), "P11": ("b/P", [message]), "Q12": ("b/Q", [])}


def _units(root, names):
    for name in names:
        (root / name).mkdir()
        (root / name / f"{name}.png").write_bytes(PNG)
    return specs({"name": "image_1", "extensions": [".png"], "is_required": True, "is_primary": True})


def test_units_whose_sheet_row_is_unusable_are_held_back_and_the_rest_go_on(tmp_path):
    collection = _units(tmp_path, ["P1", "P2", "P3", "P4"])
    path = with_cells(sheet(tmp_path / "meta.xlsx", [["patient_id", "age"], ["P1", 41], ["P2", 42], ["P2", 43],
                                                     ["P3", 44], ["P4", 45]]),
                      {"B6": '<c r="B6" t="e"><f>1/0</f><v>#DIV/0!</v></c>'})
    grouping = group_files(list_local(tmp_path), collection, Organization(Pattern.NESTED),
                           reserved={"meta.xlsx": "metadata sheet"})
    plan = plan_batch(grouping, collection, "b", PlanSettings("p", "{group_key}"), sheet=read_metadata_table(path))
    units = {u.group_key: u for u in plan.units}
    assert [u.group_key for u in plan.valid_units] == ["P1", "P3"]
    assert units["P2"].problems == [f"key 'P2' appears in rows 3 and 4 of {path}; keep one row"]
    assert units["P4"].problems == [f"row 6 of {path}, column 'age' (B6): the formula =1/0 gives #DIV/0!; fix the "
                                    "formula or type the value"]  # and no schema noise about the missing age
    assert {p.kind for u in plan.invalid_units for p in u.problems} == {"invalid_meta"}
    assert units["P3"].meta == {"patient_id": "P3", "age": 44, "dataset_key": "P3"}
    assert plan.sheet_duplicate_keys == ["P2"] and plan.units_without_sheet_row == [] and plan.sheet_rows_without_unit == []
    assert "**Sheet keys on several rows (their units are held back)** (1): `P2`" in plan_markdown(plan)


def test_sheet_notes_reach_the_report(tmp_path):
    collection = _units(tmp_path, ["P1"])
    (tmp_path / "meta.csv").write_bytes("patient_id,age,name\nP1,41,José Núñez\nP9,42,María López\n".encode("cp1252"))
    grouping = group_files(list_local(tmp_path), collection, Organization(Pattern.NESTED),
                           reserved={"meta.csv": "metadata sheet"})
    plan = plan_batch(grouping, collection, "b", PlanSettings("p", "{group_key}"),
                      sheet=read_metadata_table(tmp_path / "meta.csv"))
    assert plan.units[0].meta["name"] == "José Núñez" and plan.sheet_notes == [
        f"{tmp_path / 'meta.csv'} is not UTF-8; it was read as cp1252 (detected, so possibly wrong: if its text looks "
        "garbled, set metadata.encoding)"]
    assert f"**Sheet notes:**\n- {plan.sheet_notes[0]}" in plan_markdown(plan)
