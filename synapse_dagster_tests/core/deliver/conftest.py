"""The delivery tests run on both ledgers: a SQLite file, and a database of a real Postgres server."""

from __future__ import annotations

import pytest

from synapse_dagster.core.deliver.ledger import Ledger


@pytest.fixture(params=["sqlite", "postgres"])
def ledger(request, tmp_path):
    url = tmp_path / "ledger.sqlite3" if request.param == "sqlite" else request.getfixturevalue(
        "postgres_server").new_database()
    with Ledger(url) as led:
        yield led
