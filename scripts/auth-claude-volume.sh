#!/usr/bin/env bash
# Logs Claude Code into its auth volume: `moonauth login claude` (see scripts/auth-volume.sh).
exec "$(dirname "${BASH_SOURCE[0]}")/auth-volume.sh" claude "$@"
