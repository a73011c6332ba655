#!/usr/bin/env bash
# nearline evaluate side by side with Open Bandit Pipeline (PyPI `obp`) on the same
# logged data: simulated billboard outcomes written by nearline-evaluate's
# `simulate_logs` example, as NDJSON.gz for `nearline evaluate` and as arrays for OBP
# (per decision: the logged action, its propensity, the reward, the target's
# distribution and the out-of-fold reward model's predictions over a fixed action space).
#
# Two timings, stated for what they are:
#   1. like for like, the estimators only: nearline's (`estimate_arrays`: BCa intervals
#      over a Poisson bootstrap at this size) and OBP's (`obp_ope.py`: percentile
#      intervals over a multinomial bootstrap) IPS, SNIPS and DR, 1000 resamples, both
#      handed the same arrays (the same target probabilities and the same reward-model
#      predictions), array loading excluded on both sides; nearline once on every core
#      and once pinned to one core (OBP's numpy is single-threaded);
#   2. nearline end to end, which OBP has no counterpart for: `nearline evaluate` reading
#      the NDJSON.gz outcomes, training the target along them, fitting the out-of-fold
#      reward model, estimating and bootstrapping (its phases are printed).
# Also whether both sides' estimates agree within their intervals, and the truth.
#
#   bash bench/obp.sh                    # 1 M logged decisions
#   N=100000 bash bench/obp.sh           # fewer
#
# Environment: N (decisions, 1000000), TARGET ('linucb(alpha=0.5)'), BOOTSTRAP (1000),
# E2E (1; 0 skips timing 2 and the release build of the `nearline` binary it needs, and
# compares OBP with `estimate_arrays`'s estimates), CARGO_TARGET_DIR (where cargo
# builds, ./target by default).
set -euo pipefail
cd "$(dirname "$0")/.."

N="${N:-1000000}"
TARGET="${TARGET:-linucb(alpha=0.5)}"
BOOTSTRAP="${BOOTSTRAP:-1000}"
E2E="${E2E:-1}"
OUT="bench/out/obp-$N"
VENV="bench/.venv"
BIN="${CARGO_TARGET_DIR:-target}/release"

if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c "import importlib.util as u, sys; sys.exit(u.find_spec('obp') is None)" 2>/dev/null; then
    echo "installing obp into $VENV" >&2
    # obp 0.5.7 pins Python < 3.11 and torch 1.12 (no wheel here); its estimators need
    # only numpy, scipy, scikit-learn and pandas (see bench/obp_ope.py).
    "$VENV/bin/pip" install -q --no-deps --ignore-requires-python obp==0.5.7
    "$VENV/bin/pip" install -q "numpy>=1.23,<2" "scipy<1.14" "scikit-learn>=1.1,<1.6" "pandas>=1.5,<2.3" \
        matplotlib "seaborn>=0.11" tqdm pyyaml
fi

cargo build --release -q -p nearline-evaluate --example simulate_logs --example estimate_arrays
if [ "$E2E" = 1 ]; then
    cargo build --release -q -p nearline --bin nearline
fi
if [ ! -f "$OUT/arrays/meta.json" ]; then
    rm -rf "$OUT"
    "$BIN/examples/simulate_logs" --decisions "$N" --out "$OUT/logs" --obp "$OUT/arrays" --target "$TARGET"
fi
TO=$("$VENV/bin/python" -c "import json; print(json.load(open('$OUT/arrays/meta.json'))['to_ms'])")

echo "machine: $(nproc) cores, $(uptime | sed 's/.*load average/load average/')"

# 1. The estimators only, on the same arrays.
"$BIN/examples/estimate_arrays" "$OUT/arrays" "$BOOTSTRAP" | tee "$OUT/nearline_arrays.txt"
arrays=$(sed -n 's/^NEARLINE_ARRAYS_SECONDS //p' "$OUT/nearline_arrays.txt")
taskset -c 0 "$BIN/examples/estimate_arrays" "$OUT/arrays" "$BOOTSTRAP" > "$OUT/nearline_arrays_1core.txt"
arrays_1=$(sed -n 's/^NEARLINE_ARRAYS_SECONDS //p' "$OUT/nearline_arrays_1core.txt")

# 2. nearline end to end.
ours="$OUT/nearline_arrays.txt"
if [ "$E2E" = 1 ]; then
    start=$(date +%s.%N)
    "$BIN/nearline" evaluate --policy "$TARGET" --from 0 --to "$TO" --input "$OUT/logs" \
        --estimators ips,snips,dr --bootstrap "$BOOTSTRAP" --format json > "$OUT/nearline.json" 2> "$OUT/nearline.err"
    end=$(date +%s.%N)
    nearline_total=$(echo "$end - $start" | bc)
    grep -v '^\s*$' "$OUT/nearline.err" | grep -E '^(read|evaluat|  )' || true
    ours="$OUT/nearline.json"
fi

"$VENV/bin/python" bench/obp_ope.py "$OUT/arrays" "$ours" "$BOOTSTRAP" | tee "$OUT/obp.txt"
obp=$(sed -n 's/^OBP_SECONDS //p' "$OUT/obp.txt")
echo
echo "like for like (the same arrays: target probabilities, reward-model predictions; IPS, SNIPS, DR + $BOOTSTRAP-resample intervals; loading excluded):"
echo "  obp:                          ${obp} s"
echo "  nearline, $(nproc) threads:            ${arrays} s   (obp / nearline $(echo "scale=1; $obp / $arrays" | bc)x)"
echo "  nearline, pinned to one core: ${arrays_1} s   (obp / nearline $(echo "scale=1; $obp / $arrays_1" | bc)x)"
if [ "$E2E" = 1 ]; then
    echo "nearline evaluate end to end (read $N NDJSON.gz outcomes, train the target along them, reward model, estimates, bootstrap): ${nearline_total} s"
    echo "  (obp has no counterpart: it is handed the target's distribution and the reward model; obp's estimators alone / nearline end to end: $(echo "scale=2; $obp / $nearline_total" | bc)x)"
fi
