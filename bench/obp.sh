#!/usr/bin/env bash
# nearline evaluate side by side with Open Bandit Pipeline (PyPI `obp`) on the same
# logged data: simulated billboard outcomes written by nearline-evaluate's
# `simulate_logs` example, as NDJSON.gz for `nearline evaluate` and as arrays for OBP
# (the same propensities, rewards, target distribution and out-of-fold reward model).
# Reports both sides' IPS, SNIPS and DR with 95 % bootstrap intervals, whether they agree
# within them, and the time each side takes.
#
#   bash bench/obp.sh                    # 1 M logged decisions
#   N=100000 bash bench/obp.sh           # fewer
#
# Environment: N (decisions, 1000000), TARGET ('linucb(alpha=0.5)'), BOOTSTRAP (1000).
set -euo pipefail
cd "$(dirname "$0")/.."

N="${N:-1000000}"
TARGET="${TARGET:-linucb(alpha=0.5)}"
BOOTSTRAP="${BOOTSTRAP:-1000}"
OUT="bench/out/obp-$N"
VENV="bench/.venv"

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

cargo build --release -q -p nearline-evaluate --example simulate_logs --example estimate_arrays -p nearline --bin nearline
if [ ! -f "$OUT/arrays/meta.json" ]; then
    rm -rf "$OUT"
    ./target/release/examples/simulate_logs --decisions "$N" --out "$OUT/logs" --obp "$OUT/arrays" --target "$TARGET"
fi
TO=$("$VENV/bin/python" -c "import json; print(json.load(open('$OUT/arrays/meta.json'))['to_ms'])")

start=$(date +%s.%N)
./target/release/nearline evaluate --policy "$TARGET" --from 0 --to "$TO" --input "$OUT/logs" \
    --estimators ips,snips,dr --bootstrap "$BOOTSTRAP" --format json > "$OUT/nearline.json" 2> "$OUT/nearline.err"
end=$(date +%s.%N)
nearline_total=$(echo "$end - $start" | bc)
nearline_eval=$(sed -n 's/^evaluated in \([0-9.]*\) s$/\1/p' "$OUT/nearline.err")

./target/release/examples/estimate_arrays "$OUT/arrays" "$BOOTSTRAP" | tee "$OUT/nearline_arrays.txt"
arrays=$(sed -n 's/^NEARLINE_ARRAYS_SECONDS //p' "$OUT/nearline_arrays.txt")

"$VENV/bin/python" bench/obp_ope.py "$OUT/arrays" "$OUT/nearline.json" "$BOOTSTRAP" | tee "$OUT/obp.txt"
obp=$(sed -n 's/^OBP_SECONDS //p' "$OUT/obp.txt")
echo
echo "nearline evaluate, end to end (read $N NDJSON.gz outcomes, train the target along them, fit the reward model, estimate, bootstrap): ${nearline_total} s"
echo "nearline evaluate, after reading (training, reward model, estimates, bootstrap): ${nearline_eval} s"
echo "obp (given nearline's target distribution and reward model: estimates and bootstrap only): ${obp} s"
echo "nearline on OBP's own arrays (the same work as OBP: estimates and bootstrap): ${arrays} s"
echo "obp / nearline, same work on the same arrays: $(echo "scale=1; $obp / $arrays" | bc)x"
echo "obp / nearline end to end (nearline also reads, trains the target, fits the reward model): $(echo "scale=1; $obp / $nearline_total" | bc)x"
