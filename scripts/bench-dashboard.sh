#!/usr/bin/env bash
# `moonauth dashboard` under load: GET /api/accounts from CLIENTS concurrent keep-alive
# loopback clients for DURATION seconds, over a store of ACCOUNTS accounts (each with its login
# directory, read on every request, and a full usage history of 100 snapshots); prints
# requests per second and the latency percentiles (examples/dashboard_load.rs).
#
# Usage: scripts/bench-dashboard.sh        Settings: ACCOUNTS (50), CLIENTS (8), DURATION (seconds, 10),
#        RUNS (3; every run is printed).   MOONAUTH (a built binary; default: cargo build --release).
# Target (issue 14): p99 under 10 ms with 50 accounts and 8 clients.
set -euo pipefail
ACCOUNTS=${ACCOUNTS:-50}
CLIENTS=${CLIENTS:-8}
DURATION=${DURATION:-10}
RUNS=${RUNS:-3}
cd "$(dirname "$0")/.."
if [ -z "${MOONAUTH:-}" ]; then
  cargo build --release --quiet
  MOONAUTH="${CARGO_TARGET_DIR:-target}/release/moonauth"
fi
cargo build --release --quiet --example dashboard_load
load="${CARGO_TARGET_DIR:-target}/release/examples/dashboard_load"
echo "machine: $(nproc) cores, $(uname -r)"
for _ in $(seq "$RUNS"); do
  "$load" "$MOONAUTH" tests/fixtures "$ACCOUNTS" "$CLIENTS" "$DURATION"
done
