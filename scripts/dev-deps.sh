#!/usr/bin/env bash
# Makes sure this machine can build and test the project: PostgreSQL and RabbitMQ installed,
# running and reachable on 127.0.0.1, and the dev database present. Safe to run repeatedly.
set -euo pipefail

PGHOST=127.0.0.1
PGPORT=${PGPORT:-5432}
DB_NAME=${DB_NAME:-billing}
SUDO=""
[[ $(id -u) -ne 0 ]] && SUDO="sudo"

log() { printf '[dev-deps] %s\n' "$*"; }
port_open() { timeout 1 bash -c "</dev/tcp/$1/$2" 2>/dev/null; }

apt_updated=0
apt_install() {
  if [[ $apt_updated -eq 0 ]]; then
    $SUDO apt-get update -qq
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
}

# --- Build tools (a fresh machine has Rust; make sure C tooling for ring is there) ---
command -v cc >/dev/null || { log "installing gcc"; apt_install gcc; }
command -v make >/dev/null || { log "installing make"; apt_install make; }
command -v curl >/dev/null || { log "installing curl"; apt_install curl; }

# --- cargo-deny: the dependency audit of `make test` (deny.toml, scripts/deny-check.sh) ---
# Built once per machine (~5 min on 2 cores) into ~/.cargo/bin, then found there. Its build
# stays out of the shared CARGO_TARGET_DIR (cargo install's own temporary directory).
CARGO_DENY_VERSION=0.20.2
if [[ $(cargo-deny --version 2>/dev/null) != "cargo-deny $CARGO_DENY_VERSION" ]]; then
  log "installing cargo-deny $CARGO_DENY_VERSION (cargo install, a few minutes)"
  env -u CARGO_TARGET_DIR cargo install --locked --quiet cargo-deny --version "$CARGO_DENY_VERSION"
fi

# --- Python and the official Stripe SDK (tests prove our signatures and the fake against it) ---
command -v python3 >/dev/null || { log "installing python3"; apt_install python3 python3-pip; }
if ! python3 -c 'import stripe' 2>/dev/null; then
  log "installing the stripe Python SDK"
  python3 -m pip install -q 'stripe>=12,<17' 2>/dev/null \
    || python3 -m pip install -q --break-system-packages 'stripe>=12,<17'
fi
# openapi-spec-validator: query-api's tests validate the served /api/openapi.json with it.
if ! python3 -c 'import openapi_spec_validator' 2>/dev/null; then
  log "installing openapi-spec-validator"
  python3 -m pip install -q 'openapi-spec-validator>=0.7,<0.10' 2>/dev/null \
    || python3 -m pip install -q --break-system-packages 'openapi-spec-validator>=0.7,<0.10'
fi

# --- Headless Chromium + playwright-core (the widget's real-browser test) ---
[[ -x /usr/bin/chromium ]] || { log "installing chromium"; apt_install chromium; }
command -v node >/dev/null || { log "installing nodejs"; apt_install nodejs npm; }
browser_tests="$(cd "$(dirname "$0")/.." && pwd)/crates/query-api/tests/browser"
if [[ ! -d $browser_tests/node_modules/playwright-core ]]; then
  log "installing playwright-core (no browser download: it drives /usr/bin/chromium)"
  (cd "$browser_tests" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --silent)
fi

# --- PostgreSQL ---
if ! command -v pg_ctlcluster >/dev/null && ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
  log "installing postgresql"
  apt_install postgresql postgresql-client
fi
if ! port_open $PGHOST "$PGPORT"; then
  log "starting postgresql"
  version=$(ls /etc/postgresql | sort -V | tail -1)
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  for _ in $(seq 1 60); do port_open $PGHOST "$PGPORT" && break; sleep 0.5; done
fi
port_open $PGHOST "$PGPORT" || { log "postgresql is not listening on $PGHOST:$PGPORT"; exit 1; }

# Local development trusts loopback connections (the services connect as postgres without a
# password, as on these machines); production uses real credentials in DATABASE_URL.
if ! psql "postgres://postgres@$PGHOST:$PGPORT/postgres" -tAc 'SELECT 1' >/dev/null 2>&1; then
  log "enabling trust auth for postgres on loopback (dev machine)"
  version=$(ls /etc/postgresql | sort -V | tail -1)
  hba=/etc/postgresql/$version/main/pg_hba.conf
  $SUDO sed -i -E 's/^(host\s+all\s+all\s+(127\.0\.0\.1\/32|::1\/128)\s+)\S+/\1trust/' "$hba"
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$version" main reload
  sleep 1
fi
psql "postgres://postgres@$PGHOST:$PGPORT/postgres" -tAc "SELECT 1 FROM pg_database WHERE datname='$DB_NAME'" | grep -q 1 \
  || psql "postgres://postgres@$PGHOST:$PGPORT/postgres" -qc "CREATE DATABASE \"$DB_NAME\"" \
  || true
log "postgresql ready on $PGHOST:$PGPORT (database $DB_NAME)"

# --- RabbitMQ ---
if ! command -v rabbitmq-server >/dev/null; then
  log "installing rabbitmq-server"
  apt_install rabbitmq-server
fi
if ! port_open 127.0.0.1 5672; then
  log "starting rabbitmq"
  $SUDO rabbitmq-server -detached || true
  for _ in $(seq 1 120); do port_open 127.0.0.1 5672 && break; sleep 0.5; done
fi
timeout 60 $SUDO rabbitmqctl await_startup >/dev/null 2>&1 || true
port_open 127.0.0.1 5672 || { log "rabbitmq is not listening on 127.0.0.1:5672"; exit 1; }
log "rabbitmq ready on 127.0.0.1:5672"
