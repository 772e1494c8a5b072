"""Ray for ``engine: ray`` pipelines: the packages installed, and something listening at ``RAY_ADDRESS``.

Connecting a Ray driver costs seconds and can hang on a dead cluster, so the cluster is checked with a TCP connect
to the address's port (the GCS port of ``host:port``, the client server's of ``ray://host:port``).
"""

from __future__ import annotations

import importlib
import importlib.util
import socket

from synapse_dagster.core.health.checks import Check, guarded

RAY_ADDRESS_ENV = "RAY_ADDRESS"
INSTALL_FIX = "pip install 'synapse-dagster[ray]'"
CONNECT_TIMEOUT_S = 3.0
_DEFAULT_PORTS = {"ray": 10001, "": 6379}  # Ray Client server; GCS
_UNCHECKABLE = ("auto", "local")


def ray_checks(address: str | None, pipelines: list[str]) -> list[Check]:
    """``pipelines``: the names of those with ``engine: ray``, which the lines name."""
    who = ", ".join(pipelines)
    installed = guarded("ray", lambda: _installed(who))
    if not installed.passed:
        return [installed, Check.skip("ray cluster", "Ray is not installed (above)")]
    return [installed, guarded("ray cluster", lambda: _cluster(address, who))]


def _installed(who: str) -> Check:
    try:
        ray = importlib.import_module("ray")
    except ImportError as exc:
        return Check.fail("ray", f"pipeline(s) {who} set engine.kind 'ray', and ray cannot be imported ({exc})",
                          fix=INSTALL_FIX)
    if importlib.util.find_spec("dagster_ray") is None:
        return Check.fail("ray", f"pipeline(s) {who} set engine.kind 'ray', and dagster-ray is not installed",
                          fix=INSTALL_FIX)
    return Check.ok("ray", f"ray {ray.__version__} and dagster-ray installed, for pipeline(s) {who}")


def _cluster(address: str | None, who: str) -> Check:
    if not address:
        return Check.warn("ray cluster", f"{RAY_ADDRESS_ENV} is not set: each run of {who} starts a Ray of its own "
                          "on its host", fix=f"set {RAY_ADDRESS_ENV}=host:6379 (or ray://host:10001) to use a cluster")
    if address in _UNCHECKABLE:
        return Check.warn("ray cluster", f"{RAY_ADDRESS_ENV}={address} is found only when Ray starts; not checked")
    try:
        host, port = _host_port(address)
    except ValueError:
        return Check.fail("ray cluster", f"{RAY_ADDRESS_ENV}={address} is not an address",
                          fix=f"set {RAY_ADDRESS_ENV} to host:6379 or ray://host:10001")
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        return Check.fail("ray cluster", f"nothing answers at {host}:{port} ({RAY_ADDRESS_ENV}={address}): "
                          f"{exc.strerror or type(exc).__name__}",
                          fix=f"start the cluster ('ray start --head') or set {RAY_ADDRESS_ENV} to its address "
                          "(host:6379, or ray://host:10001)")
    return Check.ok("ray cluster", f"{host}:{port} accepts connections ({RAY_ADDRESS_ENV}={address})")


def _host_port(address: str) -> tuple[str, int]:
    """``ray://h:p``, ``h:p`` or ``h``; a bare host gets the scheme's default port."""
    scheme, _, rest = address.rpartition("://")
    hostport = rest.split("/", 1)[0]
    host, _, port = hostport.rpartition(":") if ":" in hostport else (hostport, "", "")
    return host.strip("[]"), int(port) if port else _DEFAULT_PORTS.get(scheme, 6379)
