#!/usr/bin/env bash
# Spark Structured Streaming vs nearline's join on the same backlog files (see
# bench/spark_join.py). Creates bench/.venv with pyspark from PyPI (Java 17 must be on
# the machine), then runs both sides in one run. Argument: requests (default 8000).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v java >/dev/null || { echo "error: Spark needs a Java runtime (17)" >&2; exit 1; }
if [ ! -x bench/.venv/bin/python ]; then
    python3 -m venv bench/.venv
    bench/.venv/bin/pip install --quiet pyspark==3.5.3
fi
exec bench/.venv/bin/python bench/spark_join.py "$@"
