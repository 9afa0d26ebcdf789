#!/usr/bin/env bash
# Benchmark: what `moonauth run` adds to a CLI run when no refresh is needed — the
# config, the account store, the renewal check (no lock on a fresh login), the child
# with its output piped and classified, the report — against running the CLI directly.
# The CLI is a stand-in that replays the captured Claude Code 2.1.330 success stream,
# so the difference is moonauth's. Target: under 5 ms added per run.
#
# Usage: scripts/bench-run-overhead.sh [--runs N] [--bin PATH]
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
runs=200
bin="${CARGO_TARGET_DIR:-$repo/target}/release/moonauth"
while [[ $# -gt 0 ]]; do
    case "$1" in
        --runs) runs="$2"; shift 2 ;;
        --bin) bin="$2"; shift 2 ;;
        *) echo "bench-run-overhead: unknown argument $1" >&2; exit 2 ;;
    esac
done
command -v hyperfine >/dev/null || apt-get install -y -qq hyperfine >/dev/null
[[ -x "$bin" ]] || (cd "$repo" && cargo build --release -q)
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/bin" "$work/login" "$work/state"
cat >"$work/bin/claude" <<STANDIN
#!/bin/sh
exec cat "$repo/tests/samples/claude-2.1.330/stream-json-ok.stdout"
STANDIN
chmod +x "$work/bin/claude"
# A fresh login (valid for years): no refresh is due.
cp "$repo/tests/fixtures/claude/valid-max/.credentials.json" "$work/login/"
export PATH="$work/bin:$PATH" MOONAUTH_STATE_DIR="$work/state"
"$bin" accounts add main --runtime claude --dir "$work/login" >/dev/null
args=(-p hi --output-format stream-json --verbose)
echo "moonauth: $("$bin" --version)  cpus: $(nproc)"
hyperfine -N --warmup 10 --runs "$runs" --export-json "$work/r.json" \
    -n "claude (stand-in) directly" "$work/bin/claude ${args[*]}" \
    -n "moonauth run claude -- …" "$bin run claude --report $work/report.json -- ${args[*]}" >/dev/null
python3 - "$work/r.json" "$work/report.json" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
direct = r["claude (stand-in) directly"]["median"] * 1000
run = r["moonauth run claude -- …"]["median"] * 1000
report = json.load(open(sys.argv[2]))
assert report["finished_by"] == "main" and report["attempts"][0]["renewal"] == "fresh", report
print(f"median: CLI directly {direct:.2f} ms, through moonauth run {run:.2f} ms: {run - direct:.2f} ms added (target < 5 ms)")
PY
