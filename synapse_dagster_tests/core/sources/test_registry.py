"""The provider registry: every row names a module that implements the seam, and no scheme is claimed twice."""

from __future__ import annotations

from collections import Counter

import pytest

from synapse_dagster.core.sources import registry
from synapse_dagster.core.sources.files import SourceError
from synapse_dagster.core.sources.location import parse_source
from synapse_dagster.core.sources.storage import resolve_storage_path


@pytest.mark.parametrize("provider", registry.PROVIDERS, ids=lambda p: p.scheme)
def test_every_provider_module_implements_the_seam(provider):
    module = provider.load()
    assert callable(module.connect) and callable(module.from_storage)
    assert registry.provider(provider.scheme) is provider
    for code in provider.storage_providers:
        assert registry.for_storage_provider(code.upper()) is provider  # codes match case-insensitively


def test_no_url_scheme_or_storage_code_is_claimed_twice():
    urls = Counter(u for p in registry.PROVIDERS for u in p.url_schemes)
    codes = Counter(c for p in registry.PROVIDERS for c in p.storage_providers)
    assert [u for u, n in urls.items() if n > 1] == [] and [c for c, n in codes.items() if n > 1] == []


def test_unknown_schemes_and_providers_name_what_is_supported():
    with pytest.raises(SourceError, match=r"'ftp://' is not supported; use s3://") as err:
        parse_source("ftp://host/x")
    assert "gs://" in str(err.value) and "sftp://" in str(err.value)
    with pytest.raises(SourceError, match="provider 'digital_ocean' cannot be listed here; supported: ") as err:
        resolve_storage_path("x", {"name": "do", "provider": "digital_ocean", "configuration": {}})
    assert "amazon_s3" in str(err.value) and "file_system" in str(err.value)
