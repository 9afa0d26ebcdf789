#!/usr/bin/env bash
# Benchmark of the worker preflight (docs/benchmarks.md). In ONE hyperfine run, the
# median wall time of:
#   1. moonauth preflight --mode universal   (release build; login dirs copied from the
#      fixtures; the real CLIs on PATH, found but not run)
#   2. the real `codex login status` + `claude auth status` pair that a CLI-spawning
#      preflight would cost (offline: unshare -n, no stdin, temp HOME)
#   3. /bin/true (the cost of starting any process)
# then the peak RSS of (1) from /usr/bin/time -v, and the ratios against the targets:
# >= 100x faster than (2), <= 3x (3), RSS < 10 MB.
#
# Needs: hyperfine, /usr/bin/time (Debian: apt-get install hyperfine time), the pinned
# CLIs (npm ci --prefix tools/clis, or MOONAUTH_CLI_BIN_DIR), cargo.
# Options: --runs N (hyperfine --min-runs, default 30).
set -euo pipefail

runs=30
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs="$2"; shift ;;
    -h | --help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
    *) echo "bench-preflight: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
for tool in hyperfine /usr/bin/time unshare; do
  command -v "$tool" >/dev/null 2>&1 || { echo "bench-preflight: $tool not found (apt-get install hyperfine time util-linux)" >&2; exit 1; }
done
clis="${MOONAUTH_CLI_BIN_DIR:-$repo/tools/clis/node_modules/.bin}"
for cli in codex claude; do
  [ -x "$clis/$cli" ] || { echo "bench-preflight: no $cli in $clis (npm ci --prefix tools/clis)" >&2; exit 1; }
done

cargo build --release --quiet
bin="${CARGO_TARGET_DIR:-$repo/target}/release/moonauth"

work=$(mktemp -d "${TMPDIR:-/tmp}/moonauth-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/codex" "$work/claude" "$work/home"
cp tests/fixtures/codex/chatgpt-valid/auth.json "$work/codex/"
cp tests/fixtures/claude/valid-max/.credentials.json "$work/claude/"

# One clean environment for all three commands.
unset ANTHROPIC_API_KEY ANTHROPIC_AUTH_TOKEN CLAUDE_CODE_OAUTH_TOKEN OPENAI_API_KEY CODEX_API_KEY \
  MOONMIND_WORKER_RUNTIME MOONAUTH_AUTH_MODE RUST_LOG MOONAUTH_NOW || true
export CODEX_HOME="$work/codex" CLAUDE_CONFIG_DIR="$work/claude" HOME="$work/home"
export PATH="$clis:$PATH" DISABLE_TELEMETRY=1 CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1
if [ "$(id -u)" -eq 0 ]; then offline="unshare -n"; else offline="unshare -r -n"; fi

"$bin" preflight --mode universal >/dev/null || { echo "bench-preflight: preflight does not pass on the fixtures" >&2; exit 1; }

cd "$work"
preflight_cmd="$bin preflight --mode universal"
pair_cmd="$offline sh -c 'codex login status </dev/null >/dev/null 2>&1; claude auth status </dev/null >/dev/null 2>&1'"
hyperfine -N --style basic --warmup 3 --min-runs "$runs" --max-runs 2000 \
  --export-csv "$work/bench.csv" \
  -n preflight "$preflight_cmd" \
  -n cli-pair "$pair_cmd" \
  -n true /bin/true >&2

median() { awk -F, -v name="$1" 'NR > 1 && $1 == name { print $4 }' "$work/bench.csv"; }
t_pre=$(median preflight)
t_pair=$(median cli-pair)
t_true=$(median true)

rss=0
for _ in 1 2 3 4 5; do
  r=$(/usr/bin/time -v "$bin" preflight --mode universal 2>&1 >/dev/null | awk -F': ' '/Maximum resident set size/ { print $2 }')
  [ "$r" -gt "$rss" ] && rss=$r
done

awk -v pre="$t_pre" -v pair="$t_pair" -v tru="$t_true" -v rss="$rss" \
  -v cpu="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')" \
  -v cores="$(nproc)" -v kernel="$(uname -r)" \
  -v versions="$("$clis/claude" --version 2>/dev/null | head -1); $("$clis/codex" --version 2>/dev/null | head -1); $("$bin" --version)" '
function verdict(ok) { return ok ? "meets" : "MISSES" }
BEGIN {
  printf "\nmachine: %s cores, %s, Linux %s\n", cores, cpu, kernel
  printf "versions: %s\n\n", versions
  printf "| command | median wall time |\n|---|---:|\n"
  printf "| moonauth preflight --mode universal | %.3f ms |\n", pre * 1000
  printf "| codex login status + claude auth status (offline) | %.1f ms |\n", pair * 1000
  printf "| /bin/true | %.3f ms |\n\n", tru * 1000
  printf "| target | measured | verdict |\n|---|---:|---|\n"
  printf "| >= 100x faster than the CLI pair | %.0fx | %s |\n", pair / pre, verdict(pair / pre >= 100)
  printf "| <= 3x /bin/true | %.2fx | %s |\n", pre / tru, verdict(pre / tru <= 3)
  printf "| peak RSS < 10 MB | %.1f MB (%d KiB) | %s |\n", rss / 1024, rss, verdict(rss < 10240)
}'
