"""What :func:`redact` masks, and the prose it must leave readable (a doctor line saying "token failed")."""

import pytest

from synapse_dagster.core.redaction import redact


@pytest.mark.parametrize(("text", "expected"), [
    ("Authorization: Token env-token-456", "Authorization: *** ***"),
    ("Token env-token-456 failed", "Token *** failed"),
    ("Bearer abcdefghij", "Bearer ***"),
    ("sent token a1b2c3d4e5", "sent token ***"),
    ("https://user:pa55word@host/x", "https://***:***@host/x"),
    ("X-Amz-Signature=deadbeef&x=1", "X-Amz-Signature=***&x=1"),
    ("host or token failed (above)", "host or token failed (above)"),
    ("token from the environment", "token from the environment"),
])
def test_redact_masks_secrets_and_keeps_prose(text, expected):
    assert redact(text) == expected
