"""Running the sandbox: in this process (``serve``) or as a child process (``start_sandbox_process``).

Tests and the demo start it as a real server on a free port so the SDK talks to it over real sockets.
The child writes ``server.json`` (URL and PID, never the token) once it listens; the parent waits for
that file instead of guessing with sleeps.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

TOKEN_ENV = "SYNAPSE_SANDBOX_TOKEN"
SERVER_FILE = "server.json"
LOG_FILE = "sandbox.log"


class SandboxStartError(RuntimeError):
    pass


def load_seed_file(path: Path) -> Mapping[str, Any]:
    """A seed file is YAML or JSON (JSON is YAML) with storages, data_collections, projects, settings."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise SandboxStartError(f"seed file {path} cannot be read: {exc}") from None
    if not isinstance(data, dict):
        raise SandboxStartError(f"seed file {path} must hold a mapping with storages/data_collections/projects")
    return data


def signing_key(data_dir: Path) -> bytes:
    """The key that signs storage URLs, kept in the data dir so URLs survive a restart."""
    path = data_dir / "signing_key"
    if path.is_file():
        return bytes.fromhex(path.read_text().strip())
    key = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key.hex())
    return key


def serve(data_dir: Path, token: str, *, host: str = "127.0.0.1", port: int = 8765, seed: Path | None = None) -> None:
    """Serve until SIGTERM/SIGINT. ``port=0`` picks a free port (written to ``server.json``)."""
    from werkzeug.serving import make_server

    from synapse_sandbox.app import SandboxApp
    from synapse_sandbox.keep_alive import KeepAliveRequestHandler
    from synapse_sandbox.store import ApiError, SandboxStore

    if not token:
        raise SandboxStartError(f"no API token: set {TOKEN_ENV} (clients send it as 'Synapse-Access-Token: Token …')")
    data_dir = data_dir.resolve()
    store = SandboxStore(data_dir)
    if seed is not None:
        try:
            store.apply_seed(load_seed_file(seed))
        except ApiError as exc:
            raise SandboxStartError(f"seed file {seed} is invalid: {exc.body}") from None
    app = SandboxApp(store, token, signing_key(data_dir))
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # request lines would carry signed URLs
    server = make_server(host, port, app, threaded=True, request_handler=KeepAliveRequestHandler)
    url = f"http://{host}:{server.server_port}"
    info_path = data_dir / SERVER_FILE
    tmp = info_path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"url": url, "pid": os.getpid()}))
    tmp.replace(info_path)
    print(f"Synapse sandbox serving on {url} (data in {data_dir})", flush=True)

    def stop(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        store.close()
        info_path.unlink(missing_ok=True)


@dataclass
class SandboxProcess:
    url: str
    data_dir: Path
    process: subprocess.Popen


@contextlib.contextmanager
def start_sandbox_process(
    data_dir: Path, token: str, *, port: int = 0, seed: Path | None = None, host: str = "127.0.0.1", timeout: float = 30.0
) -> Iterator[SandboxProcess]:
    """Run the sandbox in a child process for the duration of the ``with`` block."""
    data_dir = Path(data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    info_path = data_dir / SERVER_FILE
    info_path.unlink(missing_ok=True)
    command = [sys.executable, "-m", "synapse_sandbox", "serve", "--data-dir", str(data_dir),
               "--host", host, "--port", str(port)]
    if seed is not None:
        command += ["--seed", str(seed)]
    env = {**os.environ, TOKEN_ENV: token}
    with open(data_dir / LOG_FILE, "ab") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        url = _wait_until_listening(process, info_path, data_dir / LOG_FILE, timeout)
        yield SandboxProcess(url=url, data_dir=data_dir, process=process)
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_until_listening(process: subprocess.Popen, info_path: Path, log_path: Path, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log_path.read_text(errors="replace")[-2000:]
            raise SandboxStartError(f"the sandbox exited with code {process.returncode}:\n{tail}")
        try:
            info = json.loads(info_path.read_text())
        except (OSError, ValueError):
            info = None
        if info and info.get("pid") == process.pid:
            return str(info["url"])
        time.sleep(0.05)
    process.kill()
    raise SandboxStartError(f"the sandbox did not start listening within {timeout:.0f}s; see {log_path}")
