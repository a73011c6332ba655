#!/usr/bin/env bash
# Browser test of the insights dashboard: installs what it needs (Debian's chromium,
# playwright-core from npm; never a downloaded browser), builds the dashboard_fixture
# example and the nearline binary, and runs dashboard.test.mjs (the fixture, and a live
# `serve all --embedded`) and demo.test.mjs (a short `nearline demo`). Screenshots land in
# test-artifacts/ (dashboard.png, dashboard-billboard.png, dashboard-insights.png).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
export PATH="$HOME/.cargo/bin:$PATH"

if [ ! -x /usr/bin/chromium ]; then
    echo "==> installing chromium from Debian"
    command -v apt-get >/dev/null || { echo "error: no /usr/bin/chromium and no apt-get" >&2; exit 1; }
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
command -v node >/dev/null || {
    echo "==> installing nodejs and npm from Debian"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
}

echo "==> npm ci (playwright-core)"
cd "$here"
# playwright-core has no install script, but be explicit: no browser downloads.
PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error

echo "==> building the dashboard fixture and the nearline binary"
(cd "$repo" && cargo build -p nearline-insights --example dashboard_fixture ${CARGO_LOCKED:+--locked})
(cd "$repo" && cargo build -p nearline --bin nearline ${CARGO_LOCKED:+--locked})

echo "==> browser test"
# Where cargo put them: CARGO_TARGET_DIR when set (relative to the repository, as cargo
# takes it), else the repository's target/.
target="${CARGO_TARGET_DIR:-target}"
case "$target" in /*) ;; *) target="$repo/$target" ;; esac
FIXTURE_BIN="$target/debug/examples/dashboard_fixture" NEARLINE_BIN="$target/debug/nearline" \
    ARTIFACTS="$repo/test-artifacts" \
    node --test --test-concurrency=1 dashboard.test.mjs demo.test.mjs
