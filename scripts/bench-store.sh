#!/usr/bin/env bash
# Account-store throughput: locked read-modify-writes per second with 1 process and
# with PROCS concurrent processes on one store, and a check that no update was lost
# (the store's revision counts the writes that landed). Each operation is the one a
# task start makes: take the lock, read, pick an account, mark it used, write
# durably (temp file, fsync, rename, fsync of the directory), unlock.
#
# Usage: scripts/bench-store.sh [DIR...]   (default: $TMPDIR or /tmp, and /dev/shm when present)
# Settings: OPS (total operations per measurement, default 2000), PROCS (default 8),
#           RUNS (repetitions; the median is reported, default 3), MOONAUTH (a built binary;
#           default: cargo build --release).
# Target (issue 4): PROCS-process throughput >= half the single-process rate, 0 lost updates.
set -euo pipefail

OPS=${OPS:-2000}
PROCS=${PROCS:-8}
RUNS=${RUNS:-3}
cd "$(dirname "$0")/.."

if [ -z "${MOONAUTH:-}" ]; then
  cargo build --release --quiet
  MOONAUTH="${CARGO_TARGET_DIR:-target}/release/moonauth"
fi

if [ $# -eq 0 ]; then
  set -- "${TMPDIR:-/tmp}"
  [ -d /dev/shm ] && set -- "$@" /dev/shm
fi

# A fresh store in $1 with two Claude accounts to pick from.
fresh_store() {
  local dir
  dir=$(mktemp -d "$1/moonauth-bench-XXXXXX")
  MOONAUTH_STATE_DIR="$dir/state" "$MOONAUTH" -q accounts add a --runtime claude --dir /home/app/.claude-a >/dev/null
  MOONAUTH_STATE_DIR="$dir/state" "$MOONAUTH" -q accounts add b --runtime claude --dir /home/app/.claude-b >/dev/null
  echo "$dir"
}

revision() {
  MOONAUTH_STATE_DIR="$1/state" "$MOONAUTH" -q accounts ls --json | sed -n 's/^  "revision": \([0-9]*\),$/\1/p'
}

# Runs OPS operations split over $2 processes on a fresh store in $1; prints ops/s.
measure() {
  local root=$1 procs=$2 dir before after start end per
  dir=$(fresh_store "$root")
  before=$(revision "$dir")
  per=$((OPS / procs))
  start=$(date +%s.%N)
  for _ in $(seq 1 "$procs"); do
    MOONAUTH_STATE_DIR="$dir/state" "$MOONAUTH" -q internal store-bench --ops "$per" >/dev/null &
  done
  wait
  end=$(date +%s.%N)
  after=$(revision "$dir")
  rm -rf "$dir"
  if [ $((after - before)) -ne $((per * procs)) ]; then
    echo "bench-store: LOST UPDATES with $procs processes: $((per * procs)) made, $((after - before)) landed" >&2
    exit 1
  fi
  awk -v n=$((per * procs)) -v s="$start" -v e="$end" 'BEGIN { printf "%.0f\n", n / (e - s) }'
}

median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

status=0
echo "| store on | fs | 1 process ops/s | $PROCS processes ops/s | ratio | lost updates | target (>= 0.5) |"
echo "|---|---|---|---|---|---|---|"
for root in "$@"; do
  fs=$(df -PT "$root" | awk 'NR == 2 { print $2 }')
  # Alternate the two so a change in the disk's load (other jobs) hits both alike.
  ones=() manys=()
  for _ in $(seq 1 "$RUNS"); do
    ones+=("$(measure "$root" 1)")
    manys+=("$(measure "$root" "$PROCS")")
  done
  one=$(printf '%s\n' "${ones[@]}" | median)
  many=$(printf '%s\n' "${manys[@]}" | median)
  echo "bench-store: $root: 1 process ${ones[*]} ops/s; $PROCS processes ${manys[*]} ops/s" >&2
  ratio=$(awk -v a="$many" -v b="$one" 'BEGIN { printf "%.2f", a / b }')
  verdict=$(awk -v r="$ratio" 'BEGIN { print (r >= 0.5) ? "met" : "MISSED" }')
  [ "$verdict" = met ] || status=1
  echo "| $root | $fs | $one | $many | $ratio | 0 | $verdict |"
done
echo "($OPS operations per measurement, median of $RUNS runs, $(nproc) CPUs, $("$MOONAUTH" --version))"
exit $status
