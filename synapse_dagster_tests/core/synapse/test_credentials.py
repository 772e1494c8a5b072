"""Where the Synapse host and token come from, as the synapse CLI resolves them, without ever showing the token."""

import json

import pytest

from synapse_dagster.core.redaction import redact
from synapse_dagster.core.synapse.credentials import SynapseConfigError, resolve_credentials


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    for var in ("SYNAPSE_HOST", "SYNAPSE_ACCESS_TOKEN", "SYNAPSE_TENANT"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


def test_environment_wins_over_the_login_file(clean_env, monkeypatch):
    config = clean_env / "config.json"
    config.write_text(json.dumps({"host": "https://file.example", "access_token": "file-token-123", "tenant": "acme"}))
    from_file = resolve_credentials(config_file=str(config))
    assert (from_file.host, from_file.tenant, from_file.target) == ("https://file.example", "acme", "https://file.example#tenant=acme")
    monkeypatch.setenv("SYNAPSE_HOST", "http://127.0.0.1:8765/")
    monkeypatch.setenv("SYNAPSE_ACCESS_TOKEN", "env-token-456")
    from_env = resolve_credentials(config_file=str(config))
    assert from_env.host == "http://127.0.0.1:8765" and from_env.access_token == "env-token-456"
    assert "env-token-456" not in repr(from_env) and redact("Token env-token-456 failed") == "Token *** failed"


@pytest.mark.parametrize(
    ("env", "file_text", "message"),
    [
        ({}, None, "no Synapse host configured: set SYNAPSE_HOST"),
        ({"SYNAPSE_HOST": "synapse.example"}, None, "must start with http:// or https:// (SYNAPSE_HOST)"),
        ({"SYNAPSE_HOST": "https://s.example"}, None, "no Synapse access token for https://s.example"),
        ({}, "{not json", "is not readable JSON"),
    ],
)
def test_errors_name_the_setting_to_fix(clean_env, monkeypatch, env, file_text, message):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    config = clean_env / "config.json"
    if file_text is not None:
        config.write_text(file_text)
    with pytest.raises(SynapseConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        resolve_credentials(config_file=str(config))
