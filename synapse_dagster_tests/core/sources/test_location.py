"""Source URLs and paths parsed into locations, and connection options that never show a secret."""

from __future__ import annotations


import pytest

from synapse_dagster.core.redaction import redact
from synapse_dagster.core.sources.files import SourceError
from synapse_dagster.core.sources.location import SourceLocation, parse_source, split_uri
from synapse_dagster.core.sources.options import ConnectionOptions


def test_parse_source_urls_and_paths():
    assert parse_source("s3://bucket/in/batch") == SourceLocation("s3", "bucket", "in/batch/")
    assert parse_source("s3://bucket") == SourceLocation("s3", "bucket", "")
    assert parse_source("gs://bucket/a/") == SourceLocation("gcs", "bucket", "a/")
    assert parse_source("sftp://ann@nas.local:2222/data/in/") == SourceLocation(
        "sftp", "nas.local", "/data/in", 2222, "ann"
    )
    assert parse_source("sftp://nas.local/data").port == 22
    assert parse_source("sftp://ann@[::1]:23/x") == SourceLocation("sftp", "::1", "/x", 23, "ann")
    assert parse_source("/srv/in") == SourceLocation("local", "", "/srv/in")
    assert parse_source("file:///srv/in") == SourceLocation("local", "", "/srv/in")
    assert parse_source("sftp://ann@nas:2222/data").uri == "sftp://ann@nas:2222/data"
    assert parse_source("s3://b/in").child("batch_001").uri == "s3://b/in/batch_001/"
    # Keys may hold '#', '?' and '%': URIs are split by hand, not by a URL parser.
    assert split_uri("s3://b/in/a#1?x%20.png") == ("s3", "b", "in/a#1?x%20.png")

    with pytest.raises(SourceError, match="not supported"):
        parse_source("azure://container/x")
    with pytest.raises(SourceError, match="relative"):
        parse_source("incoming/batch")
    with pytest.raises(SourceError, match="no bucket"):
        parse_source("s3:///prefix")
    with pytest.raises(SourceError, match="SFTP_PASSWORD") as err:
        parse_source("sftp://ann:hunter2-secret@nas/data")
    assert "hunter2-secret" not in str(err.value)


def test_options_from_env_register_secrets_and_hide_them():
    env = {
        "AWS_ACCESS_KEY_ID": "AKIAENVKEY123",
        "AWS_SECRET_ACCESS_KEY": "env-secret-value-9",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
        "AWS_REGION": "eu-west-1",
        "STORAGE_EMULATOR_HOST": "127.0.0.1:8",
        "SFTP_PASSWORD": "sftp-env-pass-7",
        "SFTP_USERNAME": "ann",
    }
    options = ConnectionOptions.from_env(env)
    assert (options.endpoint_url, options.region, options.gcs_endpoint, options.sftp_username) == (
        "http://127.0.0.1:9",
        "eu-west-1",
        "http://127.0.0.1:8",
        "ann",
    )
    assert options.secret_key == "env-secret-value-9"
    for secret in ("AKIAENVKEY123", "env-secret-value-9", "sftp-env-pass-7"):
        assert secret not in repr(options)
        assert redact(f"failed with {secret}") == "failed with ***"
