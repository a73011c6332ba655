#!/usr/bin/env bash
# The whole embedded deployment under load, then a crash: `nearline serve all --embedded`
# (release build) in a temporary directory, CLIENTS HTTP clients post BATCHES batches of
# 500 events each (bench/embedded_load.py) while attribution counts them into SQLite; the
# process is killed with SIGKILL as soon as the last batch is acknowledged (attribution
# still behind), restarted on the same directory, and must then count every acknowledged
# event, exactly: counts are sets of request ids, so a loss shows as a shortfall and
# the script waits for the exact totals. A batch posted after the restart is counted
# too. Prints throughput, times, RSS and disk use. Needs python3.
# Arguments: batches per client (default 250), clients (default 8).
set -euo pipefail
cd "$(dirname "$0")/.."
batches=${1:-250}
clients=${2:-8}
expected=$((batches * clients * 250))
cargo build --release --quiet --bin nearline
dir=$(mktemp -d)
trap 'kill -9 "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT

start() {
    local env=(NEARLINE__EMBEDDED__SQLITE_PATH="$dir/nearline.db")
    for s in INGEST ATTRIBUTION INSIGHTS BILLBOARD; do
        env+=("NEARLINE__${s}__HTTP_PORT=0" "NEARLINE__${s}__GRPC_PORT=0")
    done
    env "${env[@]}" target/release/nearline serve all --embedded >"$dir/out" 2>>"$dir/nearline.log" &
    pid=$!
    until grep -q '^billboard' "$dir/out" 2>/dev/null; do sleep 0.1; done
    ingest=$(awk '/^ingest/{print $2}' "$dir/out" | sed 's|http://||')
}

counts() {
    python3 - "$dir/nearline.db" <<'PY'
import sqlite3, sys
db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
print(*db.execute("SELECT coalesce(sum(impressions), 0), coalesce(sum(plays), 0) FROM cell_counts").fetchone())
PY
}

# Waits until the counts are (expected, expected); prints how long it took.
wait_counts() {
    local what=$1 since=$2
    for _ in $(seq 1 1200); do
        if [ "$(counts)" = "$expected $expected" ]; then
            echo "$what: $expected impressions and $expected plays counted $(python3 -c "import time; print(f'{time.time() - $since:.1f}')") s after $3; RSS $(awk '/VmRSS/{print int($2/1024)}' /proc/$pid/status) MiB"
            return
        fi
        sleep 0.5
    done
    echo "error: $what: counts $(counts), expected $expected $expected" >&2
    exit 1
}

start
python3 bench/embedded_load.py "$ingest" "$batches" "$clients" "$pid" "run$$"
echo "counted when killed: $(counts) of $expected $expected"
kill -9 "$pid"
wait "$pid" 2>/dev/null || true
du -sh "$dir"/nearline-log "$dir"/nearline.db | sed 's/^/disk: /'

t1=$(python3 -c 'import time; print(time.time())')
start
grep -h 'durable event log opened' "$dir/nearline.log" | tail -1 | sed 's/^.*INFO/log:/'
wait_counts "after SIGKILL and a restart" "$t1" "the restart"
python3 bench/embedded_load.py "$ingest" 1 1 "$pid" "after$$" >/dev/null
expected=$((expected + 250))
wait_counts "a batch posted after the restart" "$t1" "the restart"
kill -TERM "$pid"
wait "$pid" || true
