#!/usr/bin/env bash
# Peer comparison on nearline's simulated stream: builds the stream, a virtualenv with
# MABWiser and Vowpal Wabbit from PyPI (in target/, reused), runs the peers, then
# nearline's policies on the same stream.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/peers-venv
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q mabwiser==2.7.4 vowpalwabbit==9.11.9
fi
cargo build --release -q -p nearline-billboard --example sim_stream --example sim
target/release/examples/sim_stream > target/peers-stream.tsv
"$venv/bin/python" bench/peers.py target/peers-stream.tsv
echo "nearline on the same stream:"
NL_POLICIES=linucb,thompson target/release/examples/sim
