"""A pipeline's sources, each resolved and listed the way a run does it (:mod:`..sources.roots`), one check each."""

from __future__ import annotations

from pathlib import Path

from synapse_dagster.core.health.checks import Check, guarded
from synapse_dagster.core.sources.files import SourceError
from synapse_dagster.core.sources.listing import check_source
from synapse_dagster.core.sources.roots import SourceSetting, resolve_roots, source_kind
from synapse_dagster.core.sources.storage import StorageLookup


def source_check(setting: SourceSetting, *, owner: str, where: str, base_dir: Path,
                 storage: StorageLookup | None, storage_id: int) -> Check:
    """``where`` is the setting's place in the pipeline file (``pipelines[0].source.path``). A storage-relative path
    is skipped when ``storage`` is ``None``: the storage's own check (above) failed or could not run. An empty
    source passes: a folders-mode source has no batch yet on a new setup."""
    label = owner + (f", spec '{setting.spec}'" if setting.spec else "")

    def failed(exc: SourceError, fix: str) -> Check:
        return Check.fail(label, f"{where}: {str(exc).removeprefix(f'{label}: ')}", fix=fix)

    def check() -> Check:
        try:
            kind = source_kind(setting.path)
        except SourceError as exc:
            return failed(exc, f"change {where} to a supported path")
        if kind == "storage" and storage is None:
            return Check.skip(label, f"{where} '{setting.path}' is relative to storage {storage_id}, which could "
                              "not be read (above)")
        try:
            root = resolve_roots([setting], owner=owner, base_dir=base_dir, storage=storage, storage_id=storage_id)[0]
            check_source(root.location, root.options, allow_empty=True)
        except SourceError as exc:
            return failed(exc, _fix(kind, where, base_dir))
        return Check.ok(label, f"source {root.location.uri} can be listed")
    return guarded(label, check)


def _fix(kind: str, where: str, base_dir: Path) -> str:
    if kind == "local":
        return f"set {where} to a folder that exists and this process may read (a relative path starts at {base_dir})"
    return f"check {where} and its connection settings (endpoint, bucket or host, credentials in the environment)"
