"""A real PostgreSQL server for the tests: a throwaway cluster (initdb) on a free port of 127.0.0.1.

Debian's ``postgresql`` package provides the binaries (``.ci/run`` installs it when it is missing). initdb refuses
to run as root, so as root the cluster belongs to the ``postgres`` user. Host logins need a password (SCRAM), so
the tests also see that it never reaches a log or an error. Without the binaries the tests are skipped here, and
fail under CI, where they must run.
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from synapse_dagster_tests.servers.common import free_port, unique


@dataclass
class PostgresServer:
    port: int
    password: str = field(repr=False)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres:{self.password}@127.0.0.1:{self.port}/{database}"

    def new_database(self, prefix: str = "ledger") -> str:
        """A fresh database's URL, so tests sharing the server never see each other's rows."""
        import psycopg2

        name = unique(prefix).replace("-", "_")
        conn = psycopg2.connect(host="127.0.0.1", port=self.port, user="postgres", password=self.password,
                                dbname="postgres")
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(f'create database "{name}"')
        finally:
            conn.close()
        return self.url(name)


def _bin_dir() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(os.path.realpath(found)).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(versions[-1]).parent if versions else None


def _as_owner(argv: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


def _run(argv: list[str]) -> None:
    done = subprocess.run(_as_owner(argv), capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed ({done.returncode}): {done.stdout[-2000:]}{done.stderr[-2000:]}")


def _cluster(bin_dir: Path, home: Path, password: str) -> Path:
    data = home / "data"
    pwfile = home / "pwfile"
    pwfile.write_text(password + "\n")
    if os.geteuid() == 0:
        shutil.chown(home, "postgres", "postgres")
        shutil.chown(pwfile, "postgres", "postgres")
    _run([str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "-E", "UTF8", "--auth-local=trust",
          "--auth-host=scram-sha-256", f"--pwfile={pwfile}"])
    return data


def _start(bin_dir: Path, home: Path, data: Path) -> int:
    """Start on a free port; another process may take the port between the probe and the bind, so try thrice."""
    error: Exception | None = None
    for _ in range(3):
        port = free_port()
        options = f"-c listen_addresses=127.0.0.1 -p {port} -k {home} -c fsync=off -c max_connections=200"
        try:
            _run([str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(home / "server.log"), "-w", "-t", "60",
                  "-o", options, "start"])
            return port
        except RuntimeError as exc:
            error = exc
    raise RuntimeError(f"postgres did not start: {error}")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    bin_dir = _bin_dir()
    if bin_dir is None or (os.geteuid() == 0 and shutil.which("runuser") is None):
        message = "PostgreSQL is not installed (Debian: apt-get install postgresql)"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; .ci/run installs it, so CI must have it")
        pytest.skip(message)
    pytest.importorskip("psycopg2")
    home = Path(tempfile.mkdtemp(prefix="synapse-pg-"))  # under /tmp: the postgres user can reach it
    password = "pg-" + secrets.token_hex(12)
    data = _cluster(bin_dir, home, password)
    port = _start(bin_dir, home, data)
    try:
        yield PostgresServer(port=port, password=password)
    finally:
        subprocess.run(_as_owner([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
                       capture_output=True, timeout=60)
        shutil.rmtree(home, ignore_errors=True)
