#!/usr/bin/env bash
# Benchmark: `moonauth status` over two auth volumes against the script approach it
# replaces (one `docker run --rm <image> sh -c 'ls …; cat …'` per volume), median of
# several runs in one session (hyperfine). Needs a Docker engine and the local test
# image (scripts/build-test-image.sh); creates two throwaway volumes and removes them.
#
# Usage: scripts/bench-status.sh [--runs N] [--bin PATH]
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
runs=20
bin="${CARGO_TARGET_DIR:-$repo/target}/release/moonauth"
while [[ $# -gt 0 ]]; do
    case "$1" in
        --runs) runs="$2"; shift 2 ;;
        --bin) bin="$2"; shift 2 ;;
        *) echo "bench-status: unknown argument $1" >&2; exit 2 ;;
    esac
done
command -v hyperfine >/dev/null || { apt-get install -y -qq hyperfine >/dev/null; }
"$repo/scripts/docker-up.sh"
[[ -x "$bin" ]] || (cd "$repo" && cargo build --release -q)
"$repo/scripts/build-test-image.sh" --bin "$bin" --tag moonauth-bench:latest >/dev/null
image=moonauth-bench:latest

claude_vol="moonauth-bench-claude-$$"
codex_vol="moonauth-bench-codex-$$"
cleanup() { docker volume rm -f "$claude_vol" "$codex_vol" >/dev/null 2>&1 || true; }
trap cleanup EXIT

export CLAUDE_VOLUME_NAME="$claude_vol" CODEX_VOLUME_NAME="$codex_vol" MOONAUTH_IMAGE="$image"
"$bin" login claude --sync-from "$repo/tests/fixtures/claude/valid-max" >/dev/null 2>&1
"$bin" login codex --sync-from "$repo/tests/fixtures/codex/chatgpt-valid" >/dev/null 2>&1

script_approach="docker run --rm -v $claude_vol:/home/app/.claude $image sh -c 'ls -la /home/app/.claude; cat /home/app/.claude/.credentials.json' >/dev/null && docker run --rm -v $codex_vol:/home/app/.codex $image sh -c 'ls -la /home/app/.codex; cat /home/app/.codex/auth.json' >/dev/null"

echo "moonauth: $("$bin" --version)  engine: $(docker version --format '{{.Server.Version}} (API {{.Server.APIVersion}})')  cpus: $(nproc)"
hyperfine --warmup 2 --runs "$runs" --export-json /tmp/bench-status.json \
    -n "moonauth status (2 volumes)" "$bin status >/dev/null" \
    -n "docker run per volume (2 volumes)" "$script_approach"
python3 - <<'PY'
import json
r = json.load(open("/tmp/bench-status.json"))["results"]
m = {x["command"]: x["median"] for x in r}
a, b = m["moonauth status (2 volumes)"], m["docker run per volume (2 volumes)"]
print(f"median moonauth status: {a*1000:.1f} ms; docker run x2: {b*1000:.1f} ms; speed-up {b/a:.1f}x (target >= 5x)")
PY
