#!/usr/bin/env bash
# The test command: installs what it needs, lints, type-checks, checks import
# contracts, then runs the whole suite. Safe to run twice.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"

echo "== ruff"
ruff check console control agent tests
ruff format --check console control agent tests
echo "== mypy (console, control, agent)"
mypy
echo "== import-linter"
lint-imports
echo "== pytest"
pytest "$@"
