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
