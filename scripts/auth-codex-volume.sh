#!/usr/bin/env bash
# Logs Codex into its auth volume: `moonauth login codex` (see scripts/auth-volume.sh).
exec "$(dirname "${BASH_SOURCE[0]}")/auth-volume.sh" codex "$@"
