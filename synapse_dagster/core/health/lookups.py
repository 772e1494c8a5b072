"""A pipeline's Synapse objects, one check each: its data collection (with the file specifications it will fill),
its storage and its project. Unlike a run, which fails on the first, each is named on its own line with the
pipeline file's setting to change."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any

from synapse_sdk.exceptions import NotFoundError

from synapse_dagster.core.health.checks import Check, guarded
from synapse_dagster.core.organize.specs import CollectionShapeError, CollectionSpecs, OrganizationError
from synapse_dagster.core.synapse.errors import LookupTarget, lookup_problem

StorageLookup = Callable[[int], Mapping[str, Any]]


def collection_check(client: Any, target: LookupTarget, where: str, source_specs: Collection[str] | None) -> Check:
    """The collection exists, has usable specifications, and (multi-path) has every spec ``assets`` names."""
    def check() -> Check:
        try:
            specs = CollectionSpecs.from_api(client.get_data_collection(target.data_collection))
        except CollectionShapeError as exc:
            return Check.fail(_name(target), str(exc))
        except Exception as exc:
            return _lookup_failure(exc, target, "data collection", target.data_collection, f"{where}.data_collection")
        if source_specs is not None:
            try:
                specs.check_source_specs(source_specs, _name(target))
            except OrganizationError as exc:
                return Check.fail(_name(target), str(exc).removeprefix(f"{_name(target)}: "),
                                  fix=f"name the collection's specifications under {where}.assets")
        listed = ", ".join(f"{s.name} (required)" if s.is_required else s.name for s in specs.specs)
        return Check.ok(_name(target), f"data collection {specs.collection_id} '{specs.name}': file specifications "
                        f"{listed}")
    return guarded(_name(target), check)


def storage_check(storage: StorageLookup, target: LookupTarget, where: str) -> Check:
    """The storage exists (``storage`` is the run's own lookup, which caches it for the sources' check)."""
    def check() -> Check:
        try:
            found = storage(target.storage)
        except Exception as exc:
            return _lookup_failure(exc, target, "storage", target.storage, f"{where}.storage")
        return Check.ok(_name(target), f"storage {target.storage} '{found.get('name')}' ({found.get('provider')})")
    return guarded(_name(target), check)


def project_check(client: Any, target: LookupTarget, where: str) -> Check:
    def check() -> Check:
        try:
            project = client.get_project(target.project)
        except Exception as exc:
            return _lookup_failure(exc, target, "project", target.project, f"{where}.project")
        title = project.get("title") or project.get("name") if isinstance(project, Mapping) else None
        return Check.ok(_name(target), f"project {target.project}" + (f" '{title}'" if title else ""))
    return guarded(_name(target), check)


def _lookup_failure(exc: Exception, target: LookupTarget, what: str, ident: int | None, setting: str) -> Check:
    """A 404 names the one setting that is wrong; other known errors read as a run would report them; the rest
    go up to :func:`guarded`."""
    if isinstance(exc, NotFoundError):
        return Check.fail(_name(target), f"{what} {ident} not found on {target.host}",
                          fix=f"set {setting} to the ID of a {what} that exists there (the number in its Synapse URL)")
    known = lookup_problem(exc, target)
    if known is None:
        raise exc
    return Check.fail(_name(target), f"{what} {ident}: {known[0]}", fix=known[1])


def _name(target: LookupTarget) -> str:
    return f"pipeline '{target.pipeline}'"
