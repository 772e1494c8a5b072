"""Content checks for what the SDK's content guard does not judge: empty files, labels that must parse, and the
signatures of formats it does not know."""

import io

import pytest

from synapse_dagster.core.plan.content import MAX_PARSE_BYTES, content_finding


@pytest.mark.parametrize("data, extension, expected", [
    (b"", ".json", "is empty (0 bytes)"),
    (b'{"a": [1, 2]}', ".json", None),
    (b"{'a': 1}", ".json", "is not valid JSON"),
    (b"\xff\xfe{}", ".json", "is not valid JSON"),  # not UTF-8 text
    (b"a: [1, 2]\n", ".yaml", None),
    (b"a: [1, 2\nb: {", ".yml", "is not valid YAML"),
    (b"<a><b/></a>", ".xml", None),
    (b"<a><b></a>", ".xml", "is not valid XML"),
    (b"\0" * 128 + b"DICM" + b"\0" * 8, ".dcm", None),
    (b"\0" * 140, ".dcm", "does not start like a DCM file"),
    (b"\x93NUMPY\x01\x00", ".npy", None),
    (b"PK\x03\x04" + b"\0" * 10, ".npy", "is named .npy but its content is ZIP"),
    (b"<!doctype html><p>404</p>", ".tif", "holds text (an HTML or JSON page?), not TIF"),
    (b"anything at all", ".bin", None),  # a format with no signature is not judged
])
def test_content_findings(data, extension, expected):
    found = content_finding(io.BytesIO(data), extension, len(data))
    assert found == expected if expected is None else expected in found


def test_a_label_over_the_parse_limit_is_not_read():
    class Unreadable(io.RawIOBase):
        def read(self, *args):
            raise AssertionError("a label over the limit must not be read")

    assert content_finding(Unreadable(), ".json", MAX_PARSE_BYTES + 1) is None
