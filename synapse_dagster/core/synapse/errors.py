"""SDK errors turned into one sentence that says which setting to fix, never a traceback or a token."""

from __future__ import annotations

from dataclasses import dataclass

from synapse_sdk.exceptions import AuthenticationError, AuthorizationError, ClientConnectionError, NotFoundError

from synapse_dagster.core.redaction import redact


@dataclass(frozen=True)
class LookupTarget:
    """What a pipeline asks Synapse for before a batch runs."""

    pipeline: str
    host: str
    data_collection: int
    storage: int
    project: int | None = None


TOKEN_FIX = "set SYNAPSE_ACCESS_TOKEN or run 'synapse login'"


def lookup_problem(exc: Exception, target: LookupTarget) -> tuple[str, str | None] | None:
    """(what went wrong, what to do) for a failed collection, storage or project lookup, or ``None`` for errors that
    are not the user's; ``synapse-dagster doctor`` prints the two apart."""
    if isinstance(exc, AuthenticationError):
        return f"Synapse at {target.host} rejected the access token (401)", TOKEN_FIX
    if isinstance(exc, AuthorizationError):
        return (f"the access token may not read data collection {target.data_collection} or storage "
                f"{target.storage} (403)"), None
    if isinstance(exc, NotFoundError):
        return (f"pipeline '{target.pipeline}': Synapse at {target.host} has no data collection "
                f"{target.data_collection}, storage {target.storage} or project {target.project} "
                f"({redact(str(exc))})"), "check data_collection, storage and project in the pipeline file"
    if isinstance(exc, ClientConnectionError):
        return f"cannot reach Synapse at {target.host}: {redact(str(exc))}", "check SYNAPSE_HOST"
    return None


def explain_lookup_error(exc: Exception, target: LookupTarget) -> str | None:
    """Why fetching the collection, storage or project failed, as one sentence, or ``None`` for errors that are not
    the user's."""
    found = lookup_problem(exc, target)
    return None if found is None else "; ".join(part for part in found if part)


def explain_write_refusal(status: int | None, collection: int) -> str | None:
    """Why Synapse stopped taking a run's writes (401, 403), naming the setting to fix and never the token; ``None``
    for other failures, which a plain re-run may cure."""
    if status == 401:
        return ("Synapse refused the access token (401); set SYNAPSE_ACCESS_TOKEN to a valid token or run "
                "'synapse login', then run the batch again")
    if status == 403:
        return (f"the access token may not create data units in data collection {collection} (403); set "
                "SYNAPSE_ACCESS_TOKEN to a token that may, then run the batch again")
    return None
