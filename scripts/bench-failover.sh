#!/usr/bin/env bash
# Benchmark: the failover switch of `moonauth run` — the time from the failing child's
# exit to the next child's start (classify, cool the account down in the store, carry
# the session, spawn), as moonauth itself measures it (`switch_ms` in its report).
# Account A's CLI prints the real Claude Code 2.1.330 usage-limit stream (the captured
# sample in tests/samples) and leaves a transcript; B's prints the real success stream.
# A stand-in replays them so the figure is moonauth's, not the CLI's start-up.
#
# Usage: scripts/bench-failover.sh [--runs N] [--bin PATH]
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
runs=50
bin="${CARGO_TARGET_DIR:-$repo/target}/release/moonauth"
while [[ $# -gt 0 ]]; do
    case "$1" in
        --runs) runs="$2"; shift 2 ;;
        --bin) bin="$2"; shift 2 ;;
        *) echo "bench-failover: unknown argument $1" >&2; exit 2 ;;
    esac
done
[[ -x "$bin" ]] || (cd "$repo" && cargo build --release -q)
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
samples="$repo/tests/samples/claude-2.1.330"
mkdir -p "$work/bin" "$work/a" "$work/b"
cat >"$work/bin/claude" <<STANDIN
#!/bin/sh
# Replays a captured Claude Code stream: usage limit on account a, success elsewhere.
case "\$CLAUDE_CONFIG_DIR" in
  */a)
    sid=\$(sed -n '1s/.*"session_id":"\([^"]*\)".*/\1/p' "$samples/stream-json-usage-limit.stdout")
    mkdir -p "\$CLAUDE_CONFIG_DIR/projects/-bench"
    echo '{"type":"user","message":{"role":"user","content":"bench"}}' >"\$CLAUDE_CONFIG_DIR/projects/-bench/\$sid.jsonl"
    cat "$samples/stream-json-usage-limit.stdout"; exit 1 ;;
  *) cat "$samples/stream-json-ok.stdout"; exit 0 ;;
esac
STANDIN
chmod +x "$work/bin/claude"
for login in a b; do
    cp "$repo/tests/fixtures/claude/valid-max/.credentials.json" "$work/$login/"
done

switches=()
for i in $(seq 1 "$runs"); do
    state="$work/state-$i"
    export MOONAUTH_STATE_DIR="$state"
    PATH="$work/bin:$PATH" "$bin" accounts add a --runtime claude --dir "$work/a" --priority 1 >/dev/null
    PATH="$work/bin:$PATH" "$bin" accounts add b --runtime claude --dir "$work/b" --priority 2 >/dev/null
    PATH="$work/bin:$PATH" "$bin" run claude --report "$work/report.json" -- -p bench --output-format stream-json --verbose >/dev/null 2>&1 </dev/null
    switches+=("$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r["attempts"][1]["switch_ms"])' "$work/report.json")")
    python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); a=r["attempts"]; assert a[0]["outcome"]=="usage-limit" and a[1]["resumed"] and r["finished_by"]=="b", r' "$work/report.json"
    rm -rf "$work/b/projects"
done
printf '%s\n' "${switches[@]}" | python3 -c '
import statistics, sys
xs = sorted(float(x) for x in sys.stdin)
print(f"failover switch over {len(xs)} runs: median {statistics.median(xs):.2f} ms, p90 {xs[int(len(xs)*0.9)-1]:.2f} ms, max {xs[-1]:.2f} ms (target < 100 ms)")
'
