"""What only Azure does (Azurite, Shared Key checked): placeholder blobs, MD5 from content settings, one listing per
folder, every credential's failure explained without the credential, and storage configs with provider 'azure'."""

from __future__ import annotations

import base64
import io
import os
import time
from datetime import UTC, datetime, timedelta

import pytest
from azure.storage.blob import ContainerSasPermissions, generate_container_sas

from synapse_dagster.core.redaction import redact
from synapse_dagster.core.sources import azure
from synapse_dagster.core.sources.files import SourceError
from synapse_dagster.core.sources.listing import check_source, list_files, list_subfolders, open_store
from synapse_dagster.core.sources.location import SourceLocation, parse_source
from synapse_dagster.core.sources.options import ConnectionOptions
from synapse_dagster.core.sources.storage import resolve_storage_path
from synapse_dagster.core.sources.store import CHUNK_SIZE, CopySink
from synapse_dagster.core.sources.upath_store import Hooks, UPathStore
from synapse_dagster_tests.core.sources.trees import (
    TOP_LEVEL_FILES,
    TREE,
    assert_secret_free,
    assert_tree_listed,
    closed_port,
)


def _other_key() -> str:
    return base64.b64encode(os.urandom(64)).decode()


def _sas(server, container: str, *, list_ok: bool = True, hours: int = 1) -> str:
    permission = ContainerSasPermissions(read=True, list=list_ok)
    return generate_container_sas(server.account_name, container, account_key=server.account_key,
                                  permission=permission, expiry=datetime.now(UTC) + timedelta(hours=hours))


@pytest.fixture
def azure_batch(azurite_server):
    """TREE below 'in/' with what tools leave in Azure: 'folder/' placeholders (one for an empty folder) and an
    ADLS directory marker, beside sibling prefixes that must not leak in."""
    container = azurite_server.new_container()
    for rel, data in TREE.items():
        azurite_server.put(container, f"in/{rel}", data)
    for placeholder in ("in/P0001/", "in/empty/", "in/"):
        azurite_server.put(container, placeholder, b"")
    marker = azurite_server.client().get_blob_client(container, "in/P0002")
    marker.upload_blob(b"", metadata={"hdi_isfolder": "true"}, overwrite=True)
    azurite_server.put(container, "in2/not-mine.txt", b"sibling prefix")
    azurite_server.put(container, "in-x.txt", b"sibling key")
    return container


def test_azure_lists_in_key_order_skipping_placeholders_with_md5(azurite_server, azure_batch):
    location = parse_source(f"az://{azure_batch}/in")
    files = list(list_files(location, azurite_server.options(), source_spec="image_1"))
    assert_tree_listed(files, f"az://{azure_batch}/in/", etags=True)  # MD5 from content_settings, as hex
    assert [f.relative_path for f in files] == sorted(TREE)  # key order, like S3 and GCS
    blob = azurite_server.client().get_blob_client(azure_batch, "in/meta.xlsx").get_blob_properties()
    assert next(f for f in files if f.relative_path == "meta.xlsx").mtime_ns == int(blob.last_modified.timestamp()) * 10**9

    flat = list(list_files(location, azurite_server.options(), recursive=False))
    assert {f.relative_path for f in flat} == TOP_LEVEL_FILES
    assert list(list_subfolders(location, azurite_server.options())) == ["P0001", "P0002", "empty"]
    with pytest.raises(SourceError, match="no objects under this prefix"):
        check_source(location.child("empty"), azurite_server.options())  # only a placeholder: nothing to ingest


def test_azure_lists_each_folder_once_without_its_siblings(azurite_server, monkeypatch):
    container = azurite_server.new_container()
    for rel in ["b1/x", "b1/y/z", "b10/x", "b11/x", "b1-old/x"]:
        azurite_server.put(container, f"drop/{rel}", b"1")
    listed: list[str | None] = []
    real = azure._walk_one_level

    async def counting(service, name, prefix):
        listed.append(prefix)
        return await real(service, name, prefix)

    monkeypatch.setattr(azure, "_walk_one_level", counting)
    files = list(list_files(parse_source(f"az://{container}/drop/b1"), azurite_server.options()))
    assert [f.relative_path for f in files] == ["x", "y/z"]
    assert listed == ["drop/b1/", "drop/b1/y/"]  # adlfs's ls would also walk b10/, b11/ and b1-old/


def test_adlfs_ls_still_hides_a_folder_behind_its_placeholder(azurite_server):
    """Why azure.py lists folders itself: over adlfs's own ``ls`` the generic store loses 'a/sub/y.txt' to the
    'a/sub/' placeholder blob. When this starts failing, adlfs has fixed it and azure._list_folder can go."""
    container = azurite_server.new_container()
    for key, data in {"a/x.txt": b"x", "a/sub/": b"", "a/sub/y.txt": b"y"}.items():
        azurite_server.put(container, key, data)
    options, location = azurite_server.options(), parse_source(f"az://{container}/a")
    generic = UPathStore(azure._root(options, False), Hooks(lambda exc, location, reading: None, bucket_word="container"))
    assert [f.relative for f in generic.iter_files(location, recursive=True)] == ["x.txt"]
    assert [f.relative_path for f in list_files(location, options)] == ["sub/y.txt", "x.txt"]


def test_azure_download_streams_in_chunks(azurite_server):
    container = azurite_server.new_container()
    data = os.urandom(CHUNK_SIZE + 12345)
    azurite_server.put(container, "big/scan.raw", data)
    writes: list[int] = []

    class CountingSink(CopySink):
        def write(self, chunk: bytes) -> int:
            writes.append(len(chunk))
            return super().write(chunk)

    buffer = io.BytesIO()
    location = parse_source(f"az://{container}/big")
    with open_store(location, azurite_server.options()) as store:
        store.download(location.container(), "big/scan.raw", CountingSink(buffer), etag=None)
        assert buffer.getvalue() == data and writes == [CHUNK_SIZE, 12345]
        with pytest.raises(SourceError, match="the object no longer exists") as err:
            store.download(location.container(), "big/gone.raw", CopySink(io.BytesIO()), etag=None)
    assert f"az://{container}/big/gone.raw" in str(err.value)


def test_azure_check_explains_each_failure_without_secrets(azurite_server, azure_batch):
    server, uri = azurite_server, f"az://{azure_batch}/in"
    wrong_key, empty = _other_key(), server.new_container("empty")
    expired, no_list = _sas(server, azure_batch, hours=-1), _sas(server, azure_batch, list_ok=False)
    wrong_cs = server.connection_string.replace(server.account_key, wrong_key)
    cases = [
        (f"az://no-such-{azure_batch}/in", server.options(), "container 'no-such-"),
        (f"az://{azure_batch}/missing", server.options(), "no objects under this prefix"),
        (f"az://{azure_batch}/in/meta.xlsx", server.options(), "names an object, not a folder"),
        (f"az://{empty}", server.options(), "the container is empty"),
        ("az://ab/in", server.options(), "not a valid container name"),
        (uri, server.options(azure_account_key=wrong_key), "the account key was rejected"),
        (uri, server.options(azure_account_key="not-base64!"), "not a valid Azure key"),
        (uri, server.options(azure_account_key=None, azure_sas_token=expired), "the SAS token was rejected"),
        (uri, server.options(azure_account_key=None, azure_sas_token=no_list), "access denied"),
        (uri, ConnectionOptions(azure_connection_string=wrong_cs), "connection string's credentials were rejected"),
        (uri, ConnectionOptions(), "no Azure account given"),
    ]
    for source, options, expected in cases:
        with pytest.raises(SourceError) as err:
            check_source(parse_source(source), options)
        message = str(err.value)
        assert expected in message and parse_source(source).uri in message, message
        assert_secret_free(message, wrong_key, server.account_key, wrong_cs, expired, no_list, "sig=")
    check_source(parse_source(uri), ConnectionOptions(azure_connection_string=server.connection_string))
    check_source(parse_source(uri), server.options(azure_account_key=None, azure_sas_token=_sas(server, azure_batch)))


def test_azure_unreachable_endpoint_fails_within_seconds(azurite_server, azure_batch, silent_port):
    for port in (closed_port(), silent_port):
        endpoint = f"http://127.0.0.1:{port}/{azurite_server.account_name}"
        started = time.monotonic()
        with pytest.raises(SourceError, match=f"cannot reach {endpoint}") as err:
            check_source(parse_source(f"az://{azure_batch}/in"),
                         azurite_server.options(azure_endpoint=endpoint, connect_timeout=1, read_timeout=1))
        assert time.monotonic() - started < 5
        assert_secret_free(str(err.value), azurite_server.account_key)


def test_azure_secrets_hide_from_repr_and_are_redacted():
    key, other_key, sas = _other_key(), _other_key(), "sv=2024-01-01&sp=rl&sig=SecretSignature123%3D"
    connection_string = f"DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={other_key};EndpointSuffix=x"
    options = ConnectionOptions.from_env({
        "AZURE_STORAGE_ACCOUNT": "acct", "AZURE_STORAGE_KEY": key, "AZURE_STORAGE_SAS_TOKEN": sas,
        "AZURE_STORAGE_CONNECTION_STRING": connection_string,
    })
    assert (options.azure_account_name, options.azure_account_key, options.azure_sas_token) == ("acct", key, sas)
    assert options.azure_connection_string == connection_string
    for secret in (key, other_key, sas, connection_string):
        assert secret not in repr(options)
        assert redact(f"before {secret} after") == "before *** after"
    assert redact(f"AccountKey={other_key}") == "AccountKey=***"  # the key inside the string, quoted alone
    adlfs_names = ConnectionOptions.from_env({"AZURE_STORAGE_ACCOUNT_NAME": "acct2", "AZURE_STORAGE_ACCOUNT_KEY": key})
    assert (adlfs_names.azure_account_name, adlfs_names.azure_account_key) == ("acct2", key)


def test_azure_storage_config_resolves_to_a_listable_location(azurite_server, azure_batch):
    server = azurite_server
    config = {"container_name": azure_batch, "account_name": server.account_name, "account_key": server.account_key,
              "endpoint_url": server.endpoint}
    storage = {"id": 9, "name": "lab container", "provider": "azure", "configuration": config}
    # Credentials from the environment that do not work: the storage's replace them rather than mix in.
    env_options = ConnectionOptions(azure_connection_string=server.connection_string.replace(server.account_key,
                                                                                             _other_key()))
    location, options = resolve_storage_path("in/P0001", storage, env_options)
    assert location == SourceLocation("azure", azure_batch, "in/P0001/")
    assert (options.azure_endpoint, options.azure_account_key) == (server.endpoint, server.account_key)
    assert options.azure_connection_string is None and server.account_key not in repr(options)
    check_source(location, options)
    assert sorted(f.relative_path for f in list_files(location, options)) == ["._scan.png", "label.json", "scan.png"]

    variants = [
        {"bucket_name": azure_batch, "connection_string": server.connection_string},
        {"container_name": azure_batch, "account_name": server.account_name, "endpoint_url": server.endpoint,
         "sas_token": _sas(server, azure_batch)},
    ]
    for variant in variants:
        location, options = resolve_storage_path("/in/", {"provider": "azure", "configuration": variant})
        assert location == SourceLocation("azure", azure_batch, "in/")
        assert {f.relative_path for f in list_files(location, options)} == set(TREE)
    with pytest.raises(SourceError, match="configuration has no 'container_name'"):
        resolve_storage_path("in", {"name": "broken", "provider": "azure", "configuration": {}}, ConnectionOptions())
