#!/usr/bin/env python3
"""nearline insights against DuckDB on the same counts, side by side in one run.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres bash bench/insights_duckdb.sh

1. Runs the insights benchmark (`cargo bench -p nearline-insights --bench queries`: ~10 M
   events of counts in Postgres, 200 queries/s open loop over HTTP, p50/p99 per scenario)
   with the roll-ups, then again answering from the cells alone.
2. Exports the same cells from the benchmark's database and loads them into DuckDB (in
   process, from PyPI), and runs the same queries there one after another, measuring each
   (p50/p99): the performance query per title (7 days, grouped by country and device,
   hourly), top titles over 24 h by plays and over 7 d by take rate.

DuckDB is an in-process columnar engine with no network or HTTP in the way, so its
latencies are a floor for a scan-based design rather than a like-for-like service.
"""

import os
import random
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
END_MS = 1_795_305_600_000
WEEK_MS = 7 * 86_400_000
DAY_MS = 86_400_000
TITLES, HEAD = 2000, 100
RUNS = int(os.environ.get("DUCKDB_RUNS", "200"))


def nearline(cells_only):
    env = dict(os.environ, BENCH_SECONDS=os.environ.get("BENCH_SECONDS", "8"))
    if cells_only:
        env["BENCH_CELLS_ONLY"] = "1"
    output = subprocess.run(["cargo", "bench", "-p", "nearline-insights", "--bench", "queries"], cwd=ROOT,
                            env=env, check=True, capture_output=True, text=True).stdout
    rows = {}
    for line in output.splitlines():
        match = re.match(r"^(.{58})\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+(\d+)$", line)
        if match:
            rows[match.group(1).strip()] = (float(match.group(3)), float(match.group(4)))
    return rows


def export_cells():
    OUT.mkdir(parents=True, exist_ok=True)
    url = os.environ["DATABASE_URL"].rsplit("/", 1)[0] + "/nearline_bench_insights"
    path = OUT / "cells.csv"
    with open(path, "w") as file:
        subprocess.run(["psql", url, "-Atqc", "COPY cell_counts TO STDOUT WITH CSV"], stdout=file, check=True)
    return path


def duckdb_latencies(path):
    import duckdb

    db = duckdb.connect()
    db.execute(f"""CREATE TABLE cell_counts AS SELECT * FROM read_csv('{path}', header=false, columns={{
        'video_id': 'BIGINT', 'epoch_start_ms': 'BIGINT', 'country': 'VARCHAR', 'device': 'VARCHAR',
        'canvas': 'VARCHAR', 'impressions': 'BIGINT', 'plays': 'BIGINT'}})""")
    rows = db.execute("SELECT count(*) FROM cell_counts").fetchone()[0]
    performance = """SELECT (epoch_start_ms // 3600000) * 3600000, country, device, SUM(impressions), SUM(plays)
        FROM cell_counts WHERE video_id = ? AND epoch_start_ms >= ? AND epoch_start_ms < ?
        GROUP BY 1, 2, 3"""
    top_plays = """SELECT video_id, SUM(plays) AS p FROM cell_counts
        WHERE epoch_start_ms >= ? AND epoch_start_ms < ? GROUP BY 1 ORDER BY p DESC, video_id LIMIT 10"""
    top_rate = """SELECT video_id, SUM(plays)::DOUBLE / SUM(impressions) AS r FROM cell_counts
        WHERE epoch_start_ms >= ? AND epoch_start_ms < ? GROUP BY 1 HAVING SUM(impressions) >= 100
        ORDER BY r DESC, video_id LIMIT 10"""
    rng = random.Random(7)
    scenarios = {
        "performance 7d, long-tail title (2 cells/epoch), same":
            (performance, lambda: [HEAD + 1 + rng.randrange(TITLES - HEAD), END_MS - WEEK_MS, END_MS]),
        "performance 7d, head title (54 cells/epoch), same":
            (performance, lambda: [1 + rng.randrange(HEAD), END_MS - WEEK_MS, END_MS]),
        "top titles, last 24 h, by plays": (top_plays, lambda: [END_MS - DAY_MS, END_MS]),
        "top titles, last 7 d, by take rate": (top_rate, lambda: [END_MS - WEEK_MS, END_MS]),
    }
    results = {}
    for name, (sql, args) in scenarios.items():
        times = []
        for _ in range(RUNS):
            started = time.perf_counter()
            db.execute(sql, args()).fetchall()
            times.append((time.perf_counter() - started) * 1000)
        times.sort()
        results[name] = (statistics.median(times), times[int(len(times) * 0.99) - 1])
    return rows, results


def main():
    if "DATABASE_URL" not in os.environ:
        sys.exit("set DATABASE_URL to the Postgres server the insights benchmark uses")
    with_rollups = nearline(cells_only=False)
    cells_only = nearline(cells_only=True)
    rows, duck = duckdb_latencies(export_cells())
    print(f"\n{rows:,} cells; nearline: 200 queries/s over HTTP, open loop; DuckDB: {RUNS} runs in process\n")
    print(f"{'scenario':<58} {'roll-ups p50/p99':>18} {'cells only p50/p99':>20} {'DuckDB p50/p99':>16} "
          f"{'p99 DuckDB/nearline':>20}")
    for name, (p50, p99) in with_rollups.items():
        before = cells_only.get(name, (float("nan"), float("nan")))
        d = duck.get(name)
        ratio = f"{d[1] / p99:.1f}" if d else "-"
        duck_text = f"{d[0]:.2f} / {d[1]:.2f}" if d else "-"
        print(f"{name:<58} {p50:8.2f} / {p99:7.2f} {before[0]:9.2f} / {before[1]:8.2f} {duck_text:>16} {ratio:>20}")


if __name__ == "__main__":
    main()
