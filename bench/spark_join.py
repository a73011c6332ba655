#!/usr/bin/env python3
"""Spark Structured Streaming's stream-stream join with watermarks against nearline's
join core and embedded pipeline, side by side on the same backlog stream read from files.

    bash bench/spark_join.sh            # creates bench/.venv with pyspark, runs everything

The stream is the stream tests' three-day backlog with hours of disorder within each
topic (services/attribution/tests/stream/workload.rs), written by the `backlog_files`
example as 20 NDJSON files per topic in arrival order; Spark reads one file of each topic
per micro-batch. Spark's query follows DESIGN §3 as far as Spark can express it:
impressions and plays each with a 6 h watermark, a left outer join of plays to
impressions on (request_id, video_id) with `I.t - 60 s <= P.t <= I.t + 1 h`, distinct
request ids per cell counted from its output. Spark drops rows by its own rules (one
global watermark, the minimum over both inputs, and state eviction by it); this script
reports what it gets wrong against the reference rather than tuning the input for it.
"""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
DATA = OUT / "backlog"
REQUESTS = sys.argv[1] if len(sys.argv) > 1 else "8000"


def cargo_example(*args):
    command = ["cargo", "run", "--quiet", "--release", "-p", "nearline-attribution", "--example",
               "backlog_files", "--", *args]
    return subprocess.run(command, cwd=ROOT, check=True, capture_output=True, text=True).stdout


def spark_counts():
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F
    from pyspark.sql.types import LongType, StringType, StructField, StructType

    spark = (SparkSession.builder.master("local[2]").appName("nearline-vs-spark")
             .config("spark.sql.shuffle.partitions", "4")
             .config("spark.ui.enabled", "false")
             .config("spark.sql.streaming.multipleWatermarkPolicy", "min")
             .getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    fields = [StructField(name, kind) for name, kind in [
        ("request_id", StringType()), ("video_id", LongType()), ("country", StringType()),
        ("device", StringType()), ("canvas", StringType()), ("event_time", LongType())]]
    schema = StructType(fields)

    def source(topic):
        frame = (spark.readStream.schema(schema).option("maxFilesPerTrigger", 1)
                 .json(str(DATA / topic)))
        return frame.withColumn("ts", (F.col("event_time") / 1000).cast("timestamp"))

    impressions = source("impressions").withWatermark("ts", "6 hours").alias("i")
    plays = source("plays").withWatermark("ts", "6 hours").alias("p")
    condition = F.expr("""i.request_id = p.request_id AND i.video_id = p.video_id
        AND p.ts >= i.ts - INTERVAL 60 SECONDS AND p.ts <= i.ts + INTERVAL 1 HOUR""")
    joined = plays.join(impressions, condition, "leftOuter").select(
        F.col("p.request_id").alias("play_request"), F.col("p.video_id").alias("play_video"),
        F.col("p.event_time").alias("play_time"), F.col("p.country").alias("play_country"),
        F.col("p.device").alias("play_device"), F.col("i.request_id").alias("request_id"),
        F.col("i.video_id").alias("video_id"), F.col("i.event_time").alias("event_time"),
        F.col("i.country").alias("country"), F.col("i.device").alias("device"),
        F.col("i.canvas").alias("canvas"))
    # Impressions on their own, past the same watermark (Spark drops late rows here too).
    seen = (source("impressions").withWatermark("ts", "6 hours")
            .dropDuplicates(["request_id", "video_id", "event_time", "country", "device", "canvas", "ts"]))

    started = time.monotonic()
    queries = []
    for name, frame in [("joined", joined), ("impressions", seen)]:
        queries.append(frame.writeStream.format("parquet").outputMode("append")
                       .option("path", str(OUT / "spark" / name))
                       .option("checkpointLocation", str(OUT / "spark" / f"{name}.checkpoint"))
                       .trigger(availableNow=True).start())
    for query in queries:
        query.awaitTermination()
    seconds = time.monotonic() - started

    epoch = 30 * 60 * 1000
    read = lambda name: spark.read.parquet(str(OUT / "spark" / name))
    imp_counts = (read("impressions")
                  .groupBy("video_id", (F.floor(F.col("event_time") / epoch) * epoch).alias("epoch"),
                           "country", "device", "canvas")
                  .agg(F.countDistinct("request_id").alias("impressions")))
    matched = read("joined").where(F.col("request_id").isNotNull())
    play_counts = (matched
                   .groupBy("video_id", (F.floor(F.col("event_time") / epoch) * epoch).alias("epoch"),
                            "country", "device", "canvas")
                   .agg(F.countDistinct("request_id").alias("plays")))
    unmatched = (read("joined").where(F.col("request_id").isNull())
                 .groupBy("play_video", (F.floor(F.col("play_time") / epoch) * epoch).alias("epoch"),
                          "play_country", "play_device")
                 .agg(F.countDistinct("play_request").alias("plays")))
    unattributed = {(r.play_video, r.epoch, r.play_country, r.play_device): r.plays for r in unmatched.collect()}
    cells = {}
    for row in imp_counts.collect():
        cells[(row.video_id, row.epoch, row.country, row.device, row.canvas)] = [row.impressions, 0]
    for row in play_counts.collect():
        cells.setdefault((row.video_id, row.epoch, row.country, row.device, row.canvas), [0, 0])[1] = row.plays
    spark.stop()
    return cells, unattributed, seconds


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)
    print(cargo_example("write", str(DATA), REQUESTS).strip())
    # Spark's file source takes files in modification-time order: make that the arrival
    # order the names give (they were written within the same millisecond).
    for topic in ("impressions", "plays"):
        for n, path in enumerate(sorted((DATA / topic).iterdir())):
            os.utime(path, (1_700_000_000 + n, 1_700_000_000 + n))
    reference = json.loads((DATA / "reference.json").read_text())
    expected = {tuple(c[:5]): [c[5], c[6]] for c in reference["cells"]}
    events = reference["events"]

    nearline = json.loads(cargo_example("run", str(DATA)).strip().splitlines()[-1])
    spark_cells, spark_unattributed, spark_seconds = spark_counts()
    expected_unattributed = {tuple(u[:4]): u[4] for u in reference["unattributed"]}
    spark_unattributed_exact = sum(1 for k, v in expected_unattributed.items() if spark_unattributed.get(k) == v)
    spark_exact = sum(1 for key, value in expected.items() if spark_cells.get(key) == value)
    spark_rate = events / spark_seconds
    wrong_plays = sum(1 for key, value in expected.items() if spark_cells.get(key, [0, 0])[1] != value[1])

    rows = [
        ("nearline join core (in process)", nearline["core"]["events_per_s"], nearline["core"]["exact_cells"]),
        ("nearline embedded pipeline (log -> worker -> SQLite)", nearline["pipeline"]["events_per_s"],
         nearline["pipeline"]["exact_cells"]),
        ("Spark Structured Streaming 3.5, local[2]", spark_rate, spark_exact),
    ]
    print(f"\n{events} events, {len(expected)} reference cells")
    print(f"{'':55} {'events/s':>12} {'exact cells':>14} {'x Spark':>9}")
    for name, rate, exact in rows:
        print(f"{name:55} {rate:12,.0f} {exact:>7}/{len(expected):<6} {rate / spark_rate:9.1f}")
    print(f"\nSpark: {len(expected) - spark_exact} cells differ from the reference "
          f"({wrong_plays} in attributed plays); its wall time {spark_seconds:.1f} s includes "
          f"micro-batch scheduling, not JVM start-up.")
    print(f"unattributed-play slices exact: nearline core {nearline['core']['exact_unattributed']}"
          f"/{len(expected_unattributed)}, Spark {spark_unattributed_exact}/{len(expected_unattributed)} "
          f"(Spark emits an unmatched play only once its global watermark passes it; the last "
          f"6 h of the input never are); the pipeline settles them as watermarks pass (not measured here).")
    print(f"nearline: {nearline['core']['late']} judged too late; NDJSON parsing "
          f"{nearline['parse_seconds']:.2f} s, not in the core's rate.")


if __name__ == "__main__":
    main()
