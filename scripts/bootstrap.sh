# Sourced by the other scripts: make .venv (Python 3.12) match requirements.lock, installing only when it changed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

find_python() {
  local candidate
  for candidate in "${PYTHON:-}" python3.12 python3 "$HOME/.pyenv/versions/3.12"*/bin/python3; do
    [ -n "$candidate" ] || continue
    command -v "$candidate" >/dev/null 2>&1 || [ -x "$candidate" ] || continue
    if "$candidate" -c 'import sys; sys.exit(0 if (3, 12) <= sys.version_info[:2] < (3, 14) else 1)' 2>/dev/null; then
      echo "$candidate"; return 0
    fi
  done
  echo "synapse-dagster needs Python 3.12 or 3.13 (synapse-sdk requires it); install one or set PYTHON=/path/to/python3.12" >&2
  return 1
}

stamp_value="$(cat requirements.lock pyproject.toml | sha256sum | cut -c1-16)"
if [ ! -x .venv/bin/python ] || [ "$(cat .venv/.synapse-dagster-stamp 2>/dev/null)" != "$stamp_value" ]; then
  PY="$(find_python)"
  echo "setting up .venv with $("$PY" --version) (first run takes about a minute)" >&2
  [ -x .venv/bin/python ] || "$PY" -m venv .venv
  log=.venv/pip-install.log
  if ! { .venv/bin/python -m pip install --disable-pip-version-check --upgrade pip &&
         .venv/bin/python -m pip install --disable-pip-version-check -r requirements.lock &&
         .venv/bin/python -m pip install --disable-pip-version-check --no-deps --no-build-isolation -e . ; } >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    echo "installing the dependencies failed; the whole pip output is in $ROOT/$log" >&2
    exit 1
  fi
  echo "$stamp_value" > .venv/.synapse-dagster-stamp
fi

export PATH="$ROOT/.venv/bin:$PATH"

# Azurite, the Azure Blob Storage emulator the tests run against, from npm into .venv/azurite (when Node is here).
# Only the test command needs it. 3.35.0 is the last release that runs on Node 20 (3.36 wants 21+, 3.37 wants 22+).
ensure_azurite() {
  local version=3.35.0 log=.venv/npm-install.log
  command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || return 0
  if [ -x .venv/azurite/node_modules/.bin/azurite-blob ] && [ "$(cat .venv/azurite/.azurite-version 2>/dev/null)" = "$version" ]; then
    return 0
  fi
  echo "installing azurite $version into .venv/azurite" >&2
  if ! npm install --prefix .venv/azurite --no-audit --no-fund --loglevel=error "azurite@$version" >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    echo "installing azurite failed; the whole npm output is in $ROOT/$log" >&2
    exit 1
  fi
  echo "$version" > .venv/azurite/.azurite-version
}
