"""The layers the README's Architecture section draws, held by machine: import contracts, short functions, and a
repository that stands on its own."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("synapse_dagster", "synapse_sandbox")
MAX_LINES = 60


def test_import_contracts_hold():
    """.importlinter: the core never imports Dagster, config, defs or the CLI; layers only import downwards."""
    done = subprocess.run([str(Path(sys.executable).parent / "lint-imports"), "--no-cache"], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr


def long_functions() -> list[str]:
    found = []
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    continue
                length = node.end_lineno - node.lineno + 1
                docstring = ast.get_docstring(node) or ""
                if length > MAX_LINES and "long because" not in docstring.lower():
                    found.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name} ({length} lines)")
    return found


def test_functions_are_short_unless_they_say_why():
    assert long_functions() == []


def test_the_repository_cites_nothing_outside_itself():
    """Users who clone the project have no folder of shared notes beside it: what they need is in docs/."""
    outside = "shared" + "/"
    offenders = []
    for path in REPO.rglob("*"):
        if path.suffix not in (".py", ".md", ".yaml", ".toml", ".txt") or any(
                part.startswith(".") or part in ("build", "dist") for part in path.relative_to(REPO).parts):
            continue
        if outside in path.read_text(encoding="utf-8", errors="replace"):
            offenders.append(str(path.relative_to(REPO)))
    assert offenders == []
