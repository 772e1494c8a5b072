"""The ledger's database, when ``SYNAPSE_DAGSTER_LEDGER_URL`` names one: the URL is usable and a connection opens.

Only ``select 1`` is sent: the doctor creates no tables (the first run does).
"""

from __future__ import annotations

import sqlalchemy as sa

from synapse_dagster.core.deliver.ledger import LedgerUrlError, check_ledger_url, ledger_engine, redacted_url
from synapse_dagster.core.health.checks import Check, guarded, one_line
from synapse_dagster.core.redaction import register_secret

CONNECT_TIMEOUT_S = 5


def ledger_check(url: str, setting: str) -> Check:
    """``setting`` is the variable the URL came from, named in the fix."""
    def check() -> Check:
        try:
            check_ledger_url(url)
        except LedgerUrlError as exc:
            return Check.fail("ledger", str(exc))
        register_secret(sa.make_url(url).password)
        engine = ledger_engine(_with_connect_timeout(url))
        try:
            with engine.connect() as conn:
                conn.exec_driver_sql("select 1")
        except sa.exc.SQLAlchemyError as exc:
            cause = one_line(exc.orig) if isinstance(exc, sa.exc.DBAPIError) and exc.orig else one_line(exc)
            return Check.fail("ledger", f"cannot connect to {redacted_url(url)}: {cause}",
                              fix=f"check {setting} (host, port, user, password, database) and that the database "
                              "server is up")
        finally:
            engine.dispose()
        return Check.ok("ledger", f"{redacted_url(url)} connects")
    return guarded("ledger", check)


def _with_connect_timeout(url: str) -> str:
    """A Postgres host that drops packets would otherwise hold the doctor for libpq's default of minutes."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() != "postgresql" or "connect_timeout" in parsed.query:
        return url
    return parsed.update_query_dict({"connect_timeout": str(CONNECT_TIMEOUT_S)}).render_as_string(hide_password=False)
