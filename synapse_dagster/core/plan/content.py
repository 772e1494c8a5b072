"""Content that is not what its name says: an empty file, a label that does not parse, an image whose first bytes
are another format (or an HTML error page saved under the image's name).

These files would upload without complaint and break a training job weeks later, so they are named in the plan.
Reading is bounded: a label is parsed only up to ``MAX_PARSE_BYTES``, an image is judged by its first bytes.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from typing import BinaryIO

import yaml

MAX_PARSE_BYTES = 64 * 2**20  # bigger labels are not parsed (a note says so); JSON of this size parses in < 1 s

HOLD_BACK, WARN = "hold_back", "warn"
CONTENT_POLICIES = (HOLD_BACK, WARN)

# Signatures of the formats data teams upload, by extension. Formats not listed here are not judged.
_MAGIC: dict[str, tuple[tuple[int, bytes], ...]] = {
    ".png": ((0, b"\x89PNG\r\n\x1a\n"),),
    ".jpg": ((0, b"\xff\xd8\xff"),),
    ".jpeg": ((0, b"\xff\xd8\xff"),),
    ".gif": ((0, b"GIF87a"), (0, b"GIF89a")),
    ".bmp": ((0, b"BM"),),
    ".tif": ((0, b"II*\x00"), (0, b"MM\x00*")),
    ".tiff": ((0, b"II*\x00"), (0, b"MM\x00*")),
    ".webp": ((8, b"WEBP"),),
    ".pdf": ((0, b"%PDF-"),),
    ".dcm": ((128, b"DICM"),),
    ".npy": ((0, b"\x93NUMPY"),),
    ".npz": ((0, b"PK\x03\x04"), (0, b"PK\x05\x06")),
    ".zip": ((0, b"PK\x03\x04"), (0, b"PK\x05\x06")),
    ".gz": ((0, b"\x1f\x8b"),),
}
_HEAD_BYTES = 132
_FORMAT_NAMES = {".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF", ".tiff": "TIFF", ".dcm": "DICOM", ".npz": "ZIP",
                 ".gz": "GZIP", ".yml": "YAML"}


@dataclass(frozen=True)
class ContentPolicy:
    """What a finding does to its unit: ``hold_back`` or ``warn`` (upload it, say so), per kind of spec."""

    required: str = HOLD_BACK
    optional: str = WARN

    def for_spec(self, required: bool) -> str:
        return self.required if required else self.optional


def content_finding(handle: BinaryIO, extension: str, size: int) -> str | None:
    """What is wrong with the content of an open file named ``*{extension}``, or ``None``."""
    if size == 0:
        return "is empty (0 bytes)"
    extension = extension.lower()
    if extension in _MAGIC:
        return _magic_finding(handle.read(_HEAD_BYTES), extension)
    parse = _PARSERS.get(extension)
    if parse is None or size > MAX_PARSE_BYTES:
        return None
    data = handle.read(MAX_PARSE_BYTES + 1)
    try:
        parse(data)
    except (ValueError, yaml.YAMLError, ElementTree.ParseError, RecursionError) as exc:
        return f"is not valid {_FORMAT_NAMES.get(extension, extension[1:].upper())} ({_first_line(exc)})"
    return None


def _magic_finding(head: bytes, extension: str) -> str | None:
    if any(head[offset : offset + len(magic)] == magic for offset, magic in _MAGIC[extension]):
        return None
    actual = next((ext for ext, sigs in _MAGIC.items() if any(head[o : o + len(m)] == m for o, m in sigs)), None)
    if actual:
        return f"is named {extension} but its content is {_FORMAT_NAMES.get(actual, actual[1:].upper())}"
    if head.lstrip()[:1] in (b"<", b"{", b"["):
        return f"is named {extension} but holds text (an HTML or JSON page?), not {extension[1:].upper()}"
    return f"is named {extension} but does not start like a {extension[1:].upper()} file"


def _parse_json(data: bytes) -> None:
    json.loads(data.decode("utf-8-sig"))


def _parse_yaml(data: bytes) -> None:
    yaml.load(data.decode("utf-8-sig"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def _parse_xml(data: bytes) -> None:
    # expat (Python >= 3.12) bounds entity expansion, and no external entity is fetched
    ElementTree.fromstring(data)


_PARSERS = {".json": _parse_json, ".yaml": _parse_yaml, ".yml": _parse_yaml, ".xml": _parse_xml}


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]
