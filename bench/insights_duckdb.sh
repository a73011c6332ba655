#!/usr/bin/env bash
# nearline insights (with and without roll-ups) and DuckDB on the same counts, in one
# run (see bench/insights_duckdb.py). Creates bench/.venv with duckdb from PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${DATABASE_URL:?set DATABASE_URL to a Postgres server, e.g. postgres://postgres@127.0.0.1:5432/postgres}"
python3 -m venv bench/.venv
bench/.venv/bin/python -c 'import duckdb' 2>/dev/null || bench/.venv/bin/pip install --quiet duckdb==2.0.0
exec bench/.venv/bin/python bench/insights_duckdb.py "$@"
