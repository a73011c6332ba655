#!/usr/bin/env bash
# Peer comparison on nearline's simulated stream: builds the stream, a virtualenv with
# MABWiser and Vowpal Wabbit from PyPI (bench/.venv-peers, reused), runs the peers, then
# nearline's policies and its default mix on the same stream, with the load average.
#
#   bash bench/peers.sh
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
venv=bench/.venv-peers
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c "import mabwiser, vowpalwabbit" 2>/dev/null; then
    echo "installing MABWiser and Vowpal Wabbit into $venv" >&2
    "$venv/bin/pip" install -q mabwiser==2.7.4 vowpalwabbit==9.11.9
fi
cargo build --release -q -p nearline-billboard --example sim_stream --example sim
mkdir -p bench/out
"$target/release/examples/sim_stream" > bench/out/peers-stream.tsv
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
"$venv/bin/python" bench/peers.py bench/out/peers-stream.tsv
echo "nearline on the same stream (the default mix first, then each policy alone):"
NL_POLICIES=linucb,thompson "$target/release/examples/sim"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
