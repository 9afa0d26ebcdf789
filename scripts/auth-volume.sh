#!/usr/bin/env bash
# Usage: scripts/auth-volume.sh claude|codex [moonauth login options…]
# Logs a runtime into its auth volume (CLAUDE_VOLUME_NAME / CODEX_VOLUME_NAME, see
# .env-template): a thin wrapper over `moonauth login`, behind the familiar two-command setup
#   scripts/auth-codex-volume.sh && scripts/auth-claude-volume.sh
# Arguments are passed on, e.g. --account NAME, --image IMAGE, --sync-from ~/.claude
# (see `moonauth login --help`).
#
# moonauth is taken from MOONAUTH_BIN, else PATH, else this repository's target/release
# or target/debug. When the current directory has no .env, the repository's .env is used.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

find_moonauth() {
    if [[ -n "${MOONAUTH_BIN:-}" ]]; then
        echo "$MOONAUTH_BIN"
        return
    fi
    if command -v moonauth; then
        return
    fi
    local target="${CARGO_TARGET_DIR:-$repo/target}" candidate
    for candidate in "$target/release/moonauth" "$target/debug/moonauth"; do
        if [[ -x "$candidate" ]]; then
            echo "$candidate"
            return
        fi
    done
    echo "${0##*/}: moonauth not found: install it on PATH, run \`cargo build --release\`, or set MOONAUTH_BIN" >&2
    exit 1
}

moonauth="$(find_moonauth)"
settings=()
if [[ ! -f .env && -f "$repo/.env" ]]; then
    settings=(--env-file "$repo/.env")
fi
runtime="${1:?usage: ${0##*/} claude|codex [moonauth login options…]}"
shift
exec "$moonauth" ${settings[@]+"${settings[@]}"} login "$runtime" "$@"
