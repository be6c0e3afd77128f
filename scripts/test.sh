#!/usr/bin/env bash
# Installs everything into .venv and runs the whole test suite (SQLite, and PostgreSQL when reachable).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[dev]'
if [ -f tests/compat/package-lock.json ] && command -v npm >/dev/null 2>&1; then
  (cd tests/compat && npm ci --silent --no-audit --no-fund)
fi
if [ -z "${GATEWAY_TEST_DATABASE_URL:-}" ] && command -v pg_isready >/dev/null 2>&1 \
   && pg_isready -h 127.0.0.1 -p 5432 -q; then
  export GATEWAY_TEST_DATABASE_URL="postgresql+asyncpg://postgres@127.0.0.1:5432/test"
fi
echo "PostgreSQL tests: ${GATEWAY_TEST_DATABASE_URL:-off (set GATEWAY_TEST_DATABASE_URL to enable)}"
.venv/bin/ruff check gateway mappings tests
.venv/bin/mypy gateway mappings bench
.venv/bin/portal-gateway openapi --check
# Two workers by default (pytest-xdist): every test has its own database and ports, and the
# suite's wall time halves on a 2-core machine. PYTEST_WORKERS=0 runs it in one process.
exec .venv/bin/python -m pytest -q -p no:cacheprovider -n "${PYTEST_WORKERS:-2}" "$@"
