"""The doctor's Dagster instance check: ``$DAGSTER_HOME`` set, its ``dagster.yaml`` loads, and the storage it names
(SQLite by default, Postgres with ``deploy/dagster-postgres.yaml``) answers a read.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
from dagster._core.errors import DagsterInvalidConfigError

from synapse_dagster.core.health.checks import Check, one_line

NAME = "dagster instance"
DAGSTER_HOME_FIX = "export DAGSTER_HOME=~/dagster_home; mkdir -p $DAGSTER_HOME"


def instance_check() -> Check:
    home = os.environ.get("DAGSTER_HOME")
    if not home:
        return Check.fail(NAME, "DAGSTER_HOME is not set (it holds Dagster's runs and history)",
                          fix=f"{DAGSTER_HOME_FIX}, then run the doctor again")
    if not Path(home).is_dir():
        return Check.fail(NAME, f"DAGSTER_HOME={home} is not a folder", fix=f"mkdir -p {home}")
    try:
        with _quiet_retries(), dg.DagsterInstance.get() as instance:
            runs, storage = instance.get_runs_count(), type(instance.run_storage).__name__
    except Exception as exc:  # any way the file or its storage can fail is reported on this line
        return Check.fail(NAME, f"DAGSTER_HOME={home}: {_problem(exc)}",
                          fix=f"fix {Path(home) / 'dagster.yaml'} or what it points at (deploy/dagster-postgres.yaml "
                          "is the Postgres one; its DAGSTER_PG_* variables must be set)")
    return Check.ok(NAME, f"DAGSTER_HOME={home}: {storage} answers ({runs} run(s))")


def _problem(exc: Exception) -> str:
    """The first config error without Dagster's schema dump or stack; any other error with its cause."""
    if isinstance(exc, DagsterInvalidConfigError) and exc.errors:
        text = exc.errors[0].message.split("\n\n")[0].split(" Expected: ")[0].split("PostProcessingError: ")[-1]
        more = f" (and {len(exc.errors) - 1} more)" if len(exc.errors) > 1 else ""
        return f"dagster.yaml is invalid: {' '.join(text.split())}{more}"
    cause = exc.__cause__
    return one_line(exc) + (f" ({one_line(cause)})" if cause is not None else "")


@contextlib.contextmanager
def _quiet_retries() -> Iterator[None]:
    """dagster-postgres logs each connection retry as a root-logger warning; the check's line says it once."""
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(previous)
