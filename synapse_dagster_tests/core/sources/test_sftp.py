"""What only SFTP does (an asyncssh server): folder-by-folder order, whole-second mtimes, and its failures."""

from __future__ import annotations

import time

import pytest

from synapse_dagster.core.sources.files import SourceError
from synapse_dagster.core.sources.listing import check_source, list_files
from synapse_dagster.core.sources.location import SourceLocation, parse_source
from synapse_dagster.core.sources.options import ConnectionOptions
from synapse_dagster.core.sources.storage import resolve_storage_path
from synapse_dagster_tests.core.sources.trees import (
    TOP_LEVEL_FILES,
    assert_secret_free,
    assert_tree_listed,
    by_path,
    closed_port,
)


def test_sftp_lists_folder_by_folder(sftp_server, sftp_batch):
    location = parse_source(sftp_server.url(f"{sftp_batch}/in"))
    files = list(list_files(location, sftp_server.options()))
    assert_tree_listed(files, f"sftp://tester@127.0.0.1:{sftp_server.port}{sftp_batch}/in/", etags=False)
    local = sftp_server.root / sftp_batch.lstrip("/") / "in" / "meta.xlsx"
    assert by_path(files)["meta.xlsx"].mtime_ns == int(local.stat().st_mtime) * 10**9  # SFTP v3: whole seconds
    # Per folder: its files (sorted), then its sub-folders (sorted), depth first, like the local listing.
    assert [f.relative_path for f in files][:2] == [".DS_Store", "meta.xlsx"]

    flat = list(list_files(location, sftp_server.options(), recursive=False))
    assert {f.relative_path for f in flat} == TOP_LEVEL_FILES


def test_sftp_check_source_errors(sftp_server, sftp_batch, silent_port, tmp_path):
    ok = sftp_server.options()
    check_source(parse_source(sftp_server.url(f"{sftp_batch}/in")), ok)
    sftp_server.put(f"{sftp_batch}/forbidden/secret.txt", b"x")
    (sftp_server.root / sftp_batch.lstrip("/") / "empty").mkdir()
    empty_known_hosts = tmp_path / "known_hosts"
    empty_known_hosts.write_text("")
    cases = [
        (f"{sftp_batch}/in", sftp_server.options(sftp_password="wrong-password-42"), "login refused for user 'tester'"),
        (f"{sftp_batch}/nope", ok, "no such file or folder"),
        (f"{sftp_batch}/in/meta.xlsx", ok, "is a file, not a folder"),
        (f"{sftp_batch}/empty", ok, "the folder is empty"),
        (f"{sftp_batch}/forbidden", ok, "access denied for user 'tester'"),
        (f"{sftp_batch}/in", sftp_server.options(sftp_known_hosts=str(empty_known_hosts)), "host key of 127.0.0.1"),
    ]
    for path, options, expected in cases:
        with pytest.raises(SourceError) as err:
            check_source(parse_source(sftp_server.url(path)), options)
        assert expected in str(err.value) and path in str(err.value), str(err.value)
        assert_secret_free(str(err.value), sftp_server.password, "wrong-password-42")
    # accept-any skips the host key check (what the SDK and sshfs do by default)
    check_source(
        parse_source(sftp_server.url(f"{sftp_batch}/in")),
        sftp_server.options(sftp_known_hosts=str(empty_known_hosts), sftp_host_key_policy="accept-any"),
    )

    for port, expected in ((closed_port(), "cannot reach"), (silent_port, "did not answer within 1 s")):
        started = time.monotonic()
        with pytest.raises(SourceError, match=expected):
            check_source(parse_source(f"sftp://tester@127.0.0.1:{port}/x"), sftp_server.options(connect_timeout=1))
        assert time.monotonic() - started < 5


def test_sftp_storage_config_resolution(sftp_server, sftp_batch):
    storage = {
        "provider": "sftp",
        "configuration": {
            "host": "127.0.0.1",
            "port": sftp_server.port,
            "username": sftp_server.username,
            "password": sftp_server.password,
            "root_path": sftp_batch,
        },
    }
    base = ConnectionOptions(sftp_known_hosts=str(sftp_server.known_hosts))
    location, options = resolve_storage_path("in/P0001", storage, base)
    assert location == SourceLocation("sftp", "127.0.0.1", f"{sftp_batch}/in/P0001", sftp_server.port, "tester")
    assert options.sftp_password == sftp_server.password and options.sftp_known_hosts == str(sftp_server.known_hosts)
    assert sorted(f.relative_path for f in list_files(location, options)) == ["._scan.png", "label.json", "scan.png"]
