"""The presigned uploader against the sandbox: what it PUTs is what storage holds, whatever the file is called.

The PUTs go through one aiohttp session; a signed URL must reach storage exactly as the server signed it, so
names that need quoting (spaces, ``%``, ``+``, non-ASCII) are where a client that re-quotes URLs would break.
"""

from __future__ import annotations

import hashlib
import os
import urllib.request
from pathlib import Path

import pytest

from synapse_dagster.core.synapse.presigned import Outgoing, PresignedUploader, Refused, Streamed

NAMES = ("plain.png", "with space.png", "per%20cent.png", "plus+sign.png", "ünïcødé 画像.png", "a&b=c?.png")


def sha1(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


def stored_bytes(client, collection: int, image: str, label: str) -> bytes:
    """The bytes storage holds under ``image``'s checksum, read back through a unit (the only way to a URL)."""
    unit = client.create_data_units({"data_collection": collection, "meta": {
        "patient_id": "P0001", "age": 40, "sex": "F", "dataset_key": os.urandom(4).hex()},
        "files": {"image_1": {"checksum": image, "path": "a.png"}, "label_1": {"checksum": label, "path": "a.json"}}})
    url = client.get_data_unit(unit["id"])["files"]["image_1"]["url"]
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read()


@pytest.mark.parametrize("streamed", [False, True], ids=["from memory", "streamed from disk"])
def test_every_name_lands_with_the_bytes_that_were_read(sandbox, collection, tmp_path, streamed):
    data = {name: os.urandom(3000 + i) for i, name in enumerate(NAMES)}
    paths = {}
    for name, body in data.items():
        paths[name] = tmp_path / name
        paths[name].write_bytes(body)
    label = tmp_path / "label.json"
    label.write_bytes(b'{"ok": true}')

    def load(name: str):
        return (lambda: Streamed(paths[name], len(data[name]))) if streamed else (lambda: data[name])

    outgoing = [Outgoing(name, name, len(body), load(name)) for name, body in data.items()]
    outgoing.append(Outgoing("label", "label.json", 12, lambda: label.read_bytes()))
    with PresignedUploader(sandbox.client(), max_workers=4) as uploader:
        landed = {u.key: u for u in uploader.upload(outgoing)}

    assert {k: u.error for k, u in landed.items() if u.error} == {}
    assert {k: landed[k].checksum for k in data} == {k: sha1(v) for k, v in data.items()}
    client = sandbox.client()
    assert stored_bytes(client, collection, landed["ünïcødé 画像.png"].checksum, landed["label"].checksum) == \
        data["ünïcødé 画像.png"]


def test_in_memory_multipart_parts_reassemble_exactly(sandbox, collection, tmp_path):
    sandbox.admin("PUT", "config", {"multipart_threshold": 8 * 1024, "part_size": 3 * 1024})
    try:
        body = os.urandom(10 * 1024 + 5)  # four parts, the last of 1 KB and 5 bytes
        with PresignedUploader(sandbox.client(), max_workers=2) as uploader:
            (landed,) = uploader.upload([Outgoing("big", "big scan.png", len(body), lambda: body)])
            (label,) = uploader.upload([Outgoing("label", "l.json", 2, lambda: b"{}")])
    finally:
        sandbox.admin("PUT", "config", {"multipart_threshold": 100 * 2**20, "part_size": 100 * 2**20})
    assert landed.error is None and landed.checksum == sha1(body)
    assert stored_bytes(sandbox.client(), collection, landed.checksum, label.checksum) == body


def test_a_refused_file_is_never_presigned_and_the_uploader_closes_unused(sandbox):
    before = sandbox.stats()["requests"]
    with PresignedUploader(sandbox.client()) as uploader:
        (result,) = uploader.upload([Outgoing("x", "x.png", 1, lambda: Refused("rejected", "not a PNG"))])
        assert not uploader.loop.started  # nothing to send: no event loop, no session
    after = sandbox.stats()["requests"]
    assert result.refused == Refused("rejected", "not a PNG") and result.checksum is None
    asked = {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}
    assert asked == {"GET _sandbox/stats": 1}  # only this test's own question
