"""A small, realistic sample dataset for the demo and the tests: what a hospital export looks like.

Twelve patient folders with a grayscale PNG scan and a JSON label each, an Excel sheet with typed
columns (integer age, date, boolean), and the usual defects of real drops: a unit without its label,
a sheet row whose age is text, a label that trips the SDK's content guard, a stray notes file and a
``.DS_Store``. The data collection it belongs to is described by :func:`demo_seed`.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import struct
import zlib
from pathlib import Path
from typing import Any

DEMO_COLLECTION_ID = 1
TRY_INIT_COLLECTION_ID = 2
DEMO_STORAGE_ID = 1
DEMO_PROJECT_ID = 1
DEMO_BATCH = "2026-11-24_batch_001"

META_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["patient_id", "age", "sex", "dataset_key"],
    "properties": {
        "patient_id": {"type": "string", "pattern": "^P[0-9]{4}$"},
        "age": {"type": "integer", "minimum": 0, "maximum": 130},
        "sex": {"type": "string", "enum": ["F", "M"]},
        "scan_date": {"type": "string", "format": "date"},
        "has_finding": {"type": "boolean"},
        "site": {"type": "string"},
        "dataset_key": {"type": "string"},
    },
}


def demo_seed(storage_location: str) -> dict[str, Any]:
    """Sandbox seed: one storage, the demo data collection with its meta schema (and an empty one like it), one
    project."""
    return {
        "storages": [
            {
                "id": DEMO_STORAGE_ID,
                "name": "sandbox-local",
                "category": "internal",
                "provider": "file_system",
                "configuration": {"location": storage_location},
                "is_default": True,
            }
        ],
        "data_collections": [
            _collection(DEMO_COLLECTION_ID, "Chest X-ray (demo)"),
            # the same shape, left empty for a newcomer's own pipeline ('scripts/cli init', see the README)
            _collection(TRY_INIT_COLLECTION_ID, "My chest X-rays"),
        ],
        "projects": [{"id": DEMO_PROJECT_ID, "title": "Chest X-ray labeling (demo)", "data_collection": DEMO_COLLECTION_ID}],
    }


def _collection(ident: int, name: str) -> dict[str, Any]:
    return {
        "id": ident,
        "name": name,
        "file_specifications": [
            {"name": "image_1", "file_type": "image", "extensions": [".png", ".jpg", ".jpeg"], "is_required": True, "is_primary": True},
            {"name": "label_1", "file_type": "data", "extensions": [".json"], "is_required": True},
        ],
        "meta": {"data_unit_meta_schema": META_SCHEMA},
    }


def png_bytes(width: int, height: int, rng: random.Random) -> bytes:
    """A valid 8-bit grayscale PNG (a soft radial blob plus noise), written without an imaging library."""
    cx, cy = rng.uniform(0.3, 0.7) * width, rng.uniform(0.3, 0.7) * height
    rows = bytearray()
    for y in range(height):
        rows.append(0)  # filter type: none
        for x in range(width):
            d = ((x - cx) ** 2 + (y - cy) ** 2) ** 0.5 / max(width, height)
            rows.append(max(0, min(255, int(220 - 300 * d + rng.randint(-12, 12)))))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(bytes(rows), 6)) + chunk(b"IEND", b"")


def generate_batch(batch_dir: Path, *, units: int = 12, seed: int = 7, defects: bool = True, image_size: int = 96) -> dict[str, Any]:
    """Write one batch folder; returns what a correct ingestion must produce (for tests and the report)."""
    import openpyxl

    rng = random.Random(seed)
    batch_dir.mkdir(parents=True, exist_ok=True)
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "patients"
    sheet.append(["patient_id", "age", "sex", "scan_date", "has_finding"])
    expected: dict[str, Any] = {"valid": [], "invalid": {}}
    for index in range(1, units + 1):
        pid = f"P{index:04d}"
        unit_dir = batch_dir / pid
        unit_dir.mkdir(exist_ok=True)
        (unit_dir / "scan.png").write_bytes(png_bytes(image_size, image_size, rng))
        finding = rng.random() < 0.4
        label: dict[str, Any] = {"patient_id": pid, "finding": "nodule" if finding else "none",
                                 "boxes": [[rng.randint(0, 60), rng.randint(0, 60), 20, 20]] if finding else []}
        age: Any = rng.randint(18, 90)
        defect = None
        if defects and index == units - 2:
            defect = "unsafe"
            label["note"] = "<script>alert(1)</script>"  # the SDK's content guard rejects this file
        if defects and index == units - 1:
            defect = "bad_age"
            age = "unknown"
        (unit_dir / "label.json").write_text(json.dumps(label, indent=2), encoding="utf-8")
        if defects and index == units:
            defect = "missing_label"
            (unit_dir / "label.json").unlink()
        scan_date = dt.date(2026, 11, 1) + dt.timedelta(days=index)
        sheet.append([pid, age, rng.choice(["F", "M"]), dt.datetime.combine(scan_date, dt.time()), finding])
        if defect:
            expected["invalid"][pid] = defect
        else:
            expected["valid"].append(pid)
    workbook.save(batch_dir / "meta.xlsx")
    if defects:
        (batch_dir / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
        (batch_dir / "P0001" / "notes.txt").write_text("re-scan requested\n", encoding="utf-8")
        expected["unmatched"] = ["P0001/notes.txt"]
    return expected
