"""Synapse as a run meets it: the SDK installed, the credentials found, the host answering, the token taken.

The host is probed with one plain GET before the SDK is used: the SDK retries a refused connection for about
14 s, and an operator waiting on a typo in ``SYNAPSE_HOST`` should hear in seconds.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from importlib import metadata
from typing import Any

import requests
from packaging.version import Version
from synapse_sdk.exceptions import AuthenticationError, AuthorizationError

from synapse_dagster.core.health.checks import Check, guarded, one_line
from synapse_dagster.core.synapse.credentials import SynapseConfigError, SynapseCredentials

MINIMUM_SDK = "2026.1.39"  # the pin in pyproject.toml
PROBE_TIMEOUT_S = 5.0
_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\")]+)")


def sdk_version(minimum: str = MINIMUM_SDK) -> Check:
    """The SDK's wire contract changed before ``minimum``; an older install fails in odd places mid-run."""
    install = f"pip install 'synapse-sdk>={minimum}'"
    try:
        installed = metadata.version("synapse-sdk")
    except metadata.PackageNotFoundError:
        return Check.fail("synapse sdk", "synapse-sdk is not installed", fix=install)
    if Version(installed) < Version(minimum):
        return Check.fail("synapse sdk", f"synapse-sdk {installed} is older than {minimum}", fix=install)
    return Check.ok("synapse sdk", f"synapse-sdk {installed} (>= {minimum})")


def synapse_checks(resolve: Callable[[], SynapseCredentials],
                   connect: Callable[[], Any]) -> tuple[list[Check], SynapseCredentials | None]:
    """Credentials, host, token, each only if the one before passed; the credentials come back only when all did,
    since the pipelines' lookups need a host that answers and takes the token."""
    try:
        creds = resolve()
    except SynapseConfigError as exc:
        return [Check.fail("credentials", str(exc)), Check.skip("synapse host", "no credentials (above)"),
                Check.skip("synapse token", "no credentials (above)")], None
    checks = [Check.ok("credentials", f"host {creds.host} and token from {creds.origin}")]
    checks.append(guarded("synapse host", lambda: host_answers(creds)))
    if not checks[-1].passed:
        checks.append(Check.skip("synapse token", f"{creds.host} does not answer (above)"))
        return checks, None
    checks.append(guarded("synapse token", lambda: token_accepted(connect(), creds)))
    return checks, creds if checks[-1].passed else None


def host_answers(creds: SynapseCredentials, timeout: float = PROBE_TIMEOUT_S) -> Check:
    """Any HTTP answer will do (a 404 too): this asks only whether something at the host speaks HTTP(S)."""
    try:
        requests.get(f"{creds.host}/", timeout=timeout, allow_redirects=False)
    except requests.RequestException as exc:
        return Check.fail("synapse host", f"cannot reach Synapse at {creds.host} ({creds.origin}): {_reason(exc)}",
                          fix="check SYNAPSE_HOST (or the host in ~/.synapse/config.json: 'synapse login') and that "
                          "the server is up and reachable from here")
    return Check.ok("synapse host", f"{creds.host} answers")


def _reason(exc: requests.RequestException) -> str:
    """``Connection refused`` rather than urllib3's three nested reprs."""
    if isinstance(exc, requests.Timeout):
        return f"no answer within {PROBE_TIMEOUT_S:g} s"
    found = _ERRNO.search(str(exc))
    return found.group(1).strip() if found else one_line(exc)


def token_accepted(client: Any, creds: SynapseCredentials) -> Check:
    """A real authenticated call, the first page of data collections: cheap, and read by every ingesting token."""
    try:
        client.list_data_collections()
    except AuthenticationError:
        return Check.fail("synapse token", f"Synapse at {creds.host} rejected the access token from {creds.origin} "
                          "(401)", fix=_token_fix(creds))
    except AuthorizationError:
        return Check.warn("synapse token", f"accepted by {creds.host} ({creds.origin}), but it may not list data "
                          "collections (403); the pipelines' own lookups below tell whether it may read theirs")
    return Check.ok("synapse token", f"valid for {creds.host} (from {creds.origin})")


def _token_fix(creds: SynapseCredentials) -> str:
    """The environment wins over ~/.synapse/config.json, so a fresh 'synapse login' alone cures only the file's token."""
    if creds.origin.endswith("the environment"):  # "the environment" or "host from …, token from the environment"
        return "set SYNAPSE_ACCESS_TOKEN to a valid token, or unset it and run 'synapse login'"
    return "run 'synapse login' again, or set SYNAPSE_ACCESS_TOKEN to a valid token"
