"""A path inside a Synapse storage, resolved the way the SDK's ``get_pathlib`` does: the storage's provider and
configuration say where its root is, and the path is joined below it.

``BackendClient.get_storage`` returns a pydantic model; callers pass its ``model_dump()`` (or just its
``{"provider", "configuration"}`` part), never the model itself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from synapse_dagster.core.sources import registry
from synapse_dagster.core.sources.files import SourceError
from synapse_dagster.core.sources.location import SourceLocation
from synapse_dagster.core.sources.options import ConnectionOptions

StorageLookup = Callable[[], Mapping[str, Any]]


def resolve_storage_path(
    path: str, storage: Mapping[str, Any], options: ConnectionOptions | None = None
) -> tuple[SourceLocation, ConnectionOptions]:
    """Resolve ``path`` inside ``storage`` to a location plus the options to reach it.

    Values from the storage config override ``options`` (default: from the environment); what the config
    leaves out, such as a GCS emulator host, still comes from ``options``.
    """
    code = str(storage.get("provider") or "").lower()
    config = dict(storage.get("configuration") or {})
    name = storage.get("name") or storage.get("id") or code
    provider = registry.for_storage_provider(code)
    if provider is None:
        raise SourceError(
            f"storage '{name}': provider '{code}' cannot be listed here; supported: "
            f"{', '.join(registry.storage_provider_codes())}"
        )

    def need(key: str) -> Any:
        value = config.get(key)
        if value in (None, ""):
            raise SourceError(f"storage '{name}' ({code}): configuration has no '{key}'; fix the storage in Synapse")
        return value

    relative = path.strip().lstrip("/")
    return provider.load().from_storage(config, relative, options or ConnectionOptions.from_env(), need)
