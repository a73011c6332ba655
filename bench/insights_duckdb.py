#!/usr/bin/env python3
"""nearline insights against DuckDB on the same data, side by side in one run.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres bash bench/insights_duckdb.sh

1. Runs the insights benchmark (`cargo bench -p nearline-insights --bench queries`: 90 days
   of counts for ~14 M events in Postgres, 200 queries/s open loop over HTTP, p50/p99 per
   scenario, every scenario twice: the second pass finds the caches warm) answering from
   the cells alone (before), then with the roll-ups (after).
2. Writes the same data once as raw events to Parquet (one row per impression and per
   attributed play, with its impression's time and dimensions: what the counts count),
   loads it into DuckDB (in process, from PyPI) and answers the same questions there:
   single-query latency (p50/p99 of queries run one after another) and throughput with
   CONCURRENCY clients at once (each its own cursor), as many queries as they can.

DuckDB runs in process with no network or HTTP in the way, so its latencies are a floor
for a scan-based design over raw events rather than a like-for-like service.
Environment: BENCH_SECONDS per nearline scenario (8), DUCKDB_RUNS sequential runs per
query (100), DUCKDB_SECONDS of concurrent load per query (5), CONCURRENCY (16, the
benchmark server's database pool), SKIP_NEARLINE=1 to run DuckDB only.
"""

import os
import random
import re
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
END_MS = 1_795_305_600_000
DAY_MS = 86_400_000
HOUR_MS = 3_600_000
TITLES, HEAD = 2000, 100
RUNS = int(os.environ.get("DUCKDB_RUNS", "100"))
LOAD_SECONDS = float(os.environ.get("DUCKDB_SECONDS", "5"))
CONCURRENCY = int(os.environ.get("CONCURRENCY", "16"))


def nearline(cells_only):
    """p50/p99 per scenario of each pass (the second finds the caches warm)."""
    env = dict(os.environ, BENCH_SECONDS=os.environ.get("BENCH_SECONDS", "8"), BENCH_PASSES="2",
               MIMALLOC_ALLOW_THP="0")
    if cells_only:
        env["BENCH_CELLS_ONLY"] = "1"
    output = subprocess.run(["cargo", "bench", "-p", "nearline-insights", "--bench", "queries"], cwd=ROOT,
                            env=env, check=True, capture_output=True, text=True).stdout
    print(output)
    passes = []
    for line in output.splitlines():
        if line.startswith("pass "):
            passes.append({})
        match = re.match(r"^(.{58})\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+(\d+)$", line)
        if match:
            passes[-1][match.group(1).strip()] = (float(match.group(3)), float(match.group(4)))
    return passes


def load_average():
    return open("/proc/loadavg").read().split()[0]


def events_parquet():
    """The raw events, written once from the benchmark's cells (reused while they match)."""
    import duckdb

    OUT.mkdir(parents=True, exist_ok=True)
    url = os.environ["DATABASE_URL"].rsplit("/", 1)[0] + "/nearline_bench_insights"
    stamp = subprocess.run(["psql", url, "-Atqc", "SELECT count(*), SUM(impressions), SUM(plays) FROM cell_counts"],
                           check=True, capture_output=True, text=True).stdout.strip()
    path, stamp_path = OUT / "events.parquet", OUT / "events.stamp"
    if path.exists() and stamp_path.exists() and stamp_path.read_text() == stamp:
        return path
    cells = OUT / "cells.csv"
    with open(cells, "w") as file:
        subprocess.run(["psql", url, "-Atqc", "COPY cell_counts TO STDOUT WITH CSV"], stdout=file, check=True)
    db = duckdb.connect()
    # Each impression at a time inside its epoch; each attributed play carries its
    # impression's time and dimensions (what attribution counts it under). Sorted by
    # title and time, DuckDB's best layout for the per-title questions.
    db.execute(f"""COPY (
        WITH cells AS (SELECT * FROM read_csv('{cells}', header=false, columns={{
            'video_id': 'BIGINT', 'epoch_start_ms': 'BIGINT', 'country': 'VARCHAR', 'device': 'VARCHAR',
            'canvas': 'VARCHAR', 'impressions': 'BIGINT', 'plays': 'BIGINT'}}))
        SELECT kind, video_id, epoch_start_ms + (i * 7919) % 1800000 AS impression_ms, country, device, canvas
        FROM (SELECT 'impression' AS kind, *, unnest(range(impressions)) AS i FROM cells
              UNION ALL
              SELECT 'play' AS kind, *, unnest(range(plays)) AS i FROM cells)
        ORDER BY video_id, impression_ms
    ) TO '{path}' (FORMAT parquet)""")
    cells.unlink()
    stamp_path.write_text(stamp)
    return path


def duckdb_results(path):
    import duckdb

    db = duckdb.connect()
    db.execute(f"CREATE TABLE events AS SELECT * FROM read_parquet('{path}')")
    events = db.execute("SELECT count(*) FROM events").fetchone()[0]
    counts = "count(*) FILTER (kind = 'impression'), count(*) FILTER (kind = 'play')"
    performance = {
        "hour": f"""SELECT impression_ms // {HOUR_MS}, country, device, {counts} FROM events
            WHERE video_id = ? AND impression_ms >= ? AND impression_ms < ? GROUP BY 1, 2, 3""",
        "day": f"""SELECT impression_ms // {DAY_MS}, country, device, {counts} FROM events
            WHERE video_id = ? AND impression_ms >= ? AND impression_ms < ? GROUP BY 1, 2, 3""",
    }
    top_plays = """SELECT video_id, count(*) FILTER (kind = 'play') AS p FROM events
        WHERE impression_ms >= ? AND impression_ms < ? GROUP BY 1 ORDER BY p DESC, video_id LIMIT 10"""
    top_rate = """SELECT video_id, count(*) FILTER (kind = 'play') / count(*) FILTER (kind = 'impression') AS r
        FROM events WHERE impression_ms >= ? AND impression_ms < ? GROUP BY 1
        HAVING count(*) FILTER (kind = 'impression') >= 100 ORDER BY r DESC, video_id LIMIT 10"""

    def title(low, high):
        return lambda rng: low + rng.randrange(high - low + 1)

    def since(days):
        return [END_MS - days * DAY_MS, END_MS]

    any_title, tail, head = title(1, TITLES), title(HEAD + 1, TITLES), title(1, HEAD)
    scenarios = {
        "performance 7d, any title, group_by=country,device, hour": (performance["hour"], any_title, 7),
        "performance 7d, long-tail title (2 cells/epoch), same": (performance["hour"], tail, 7),
        "performance 7d, head title (54 cells/epoch), same": (performance["hour"], head, 7),
        "performance 7d, head title, group_by=country,device, day": (performance["day"], head, 7),
        "performance 30d, any title, group_by=country,device, day": (performance["day"], any_title, 30),
        "performance 90d, any title, group_by=country,device, day": (performance["day"], any_title, 90),
        "top titles, last 24 h, by plays": (top_plays, None, 1),
        "top titles, last 7 d, by take rate": (top_rate, None, 7),
        "top titles, last 30 d, by take rate": (top_rate, None, 30),
        "top titles, last 90 d, by take rate": (top_rate, None, 90),
    }

    def args(video, days, rng):
        return ([video(rng)] if video else []) + since(days)

    results = {}
    for name, (sql, video, days) in scenarios.items():
        rng = random.Random(7)
        times = []
        for _ in range(RUNS):
            started = time.perf_counter()
            db.execute(sql, args(video, days, rng)).fetchall()
            times.append((time.perf_counter() - started) * 1000)
        times.sort()
        single = (statistics.median(times), times[max(0, int(len(times) * 0.99) - 1)])

        done, stop = [], time.perf_counter() + LOAD_SECONDS

        def client(seed):
            cursor, rng, n = db.cursor(), random.Random(seed), 0
            while time.perf_counter() < stop:
                cursor.execute(sql, args(video, days, rng)).fetchall()
                n += 1
            done.append(n)

        started = time.perf_counter()
        threads = [threading.Thread(target=client, args=(seed,)) for seed in range(CONCURRENCY)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        results[name] = (single, sum(done) / (time.perf_counter() - started))
        print(f"duckdb {name}: p50/p99 {single[0]:.2f}/{single[1]:.2f} ms, {results[name][1]:.0f} queries/s "
              f"at {CONCURRENCY} clients (load average {load_average()})", file=sys.stderr)
    return events, results


def main():
    if "DATABASE_URL" not in os.environ:
        sys.exit("set DATABASE_URL to the Postgres server the insights benchmark uses")
    skip = os.environ.get("SKIP_NEARLINE") == "1"
    loads = [load_average()]
    before = [{}, {}] if skip else nearline(cells_only=True)
    loads.append(load_average())
    after = [{}, {}] if skip else nearline(cells_only=False)
    loads.append(load_average())
    events, duck = duckdb_results(events_parquet())
    loads.append(load_average())
    nan = (float("nan"), float("nan"))
    print(f"\n{events:,} raw events; nearline: 200 queries/s over HTTP, open loop, second pass (first pass "
          f"after roll-ups in brackets); DuckDB: {RUNS} runs one at a time, then {CONCURRENCY} clients for "
          f"{LOAD_SECONDS:.0f} s; 1-minute load average at start / after each: {' / '.join(loads)}\n")
    print(f"{'scenario':<58} {'cells only p50/p99':>19} {'roll-ups p50/p99 (cold p99)':>28} {'DuckDB p50/p99':>15} "
          f"{'DuckDB q/s':>10} {'p50 DuckDB/nearline':>19}")
    for name, ((d50, d99), qps) in duck.items():
        b50, b99 = before[-1].get(name, nan)
        a50, a99 = after[-1].get(name, nan)
        cold99 = after[0].get(name, nan)[1]
        ratio = d50 / a50 if a50 == a50 and a50 > 0 else float("nan")
        print(f"{name:<58} {b50:8.2f} / {b99:8.2f} {a50:7.2f} / {a99:7.2f} ({cold99:8.2f}) {d50:6.2f} / {d99:6.2f} "
              f"{qps:10.0f} {ratio:19.1f}")


if __name__ == "__main__":
    main()
