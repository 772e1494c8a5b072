"""Scrubbing secrets from text that may reach logs, metadata or error messages.

SDK and HTTP errors can quote request URLs and headers; presigned URLs carry signatures. Everything
user-visible passes through :func:`redact` so a token never lands in the Dagster event log.
"""

from __future__ import annotations

import re

_PATTERNS = [
    # an Authorization header's scheme and value ("Token abc123…", "Bearer …"); after a lower-case "token" only a
    # value with a digit in it, so prose such as "host or token failed" is left alone
    (re.compile(r"\b((?:Token|Bearer)\s+)[A-Za-z0-9._\-:+/=]{6,}"), r"\1***"),
    (re.compile(r"(?i)(token\s+)(?=[A-Za-z._\-:+/=]*\d)[A-Za-z0-9._\-:+/=]{6,}"), r"\1***"),
    (re.compile(r"(?i)((?:access[_-]?token|secret[_-]?key|secret|password|passwd|signature|sig|x-amz-signature|"
                r"x-amz-credential|x-goog-signature|authorization)[\"']?\s*[:=]\s*[\"']?)[^\s&\"',}]+"), r"\1***"),
    (re.compile(r"(https?://)[^/\s:@]+:[^/\s@]+@"), r"\1***:***@"),
]

_known_secrets: set[str] = set()


def register_secret(value: str | None) -> None:
    """Remember a secret value (e.g. the access token) so it is masked wherever it appears."""
    if value and len(value) >= 4:
        _known_secrets.add(value)


def redact(text: str) -> str:
    for secret in sorted(_known_secrets, key=len, reverse=True):
        text = text.replace(secret, "***")
    for pattern, repl in _PATTERNS:
        text = pattern.sub(repl, text)
    return text
