#!/usr/bin/env bash
# Try moonauth's real-CLI tests against the NEWEST Claude Code and Codex CLIs.
#
# Installs @anthropic-ai/claude-code@latest and @openai/codex@latest into a
# temporary copy of tools/clis (package.json + package-lock.json only; the
# pinned tools/clis/node_modules is left alone unless --pin), prints the pinned and the
# newest versions, then runs
#
#   MOONAUTH_CLI_BIN_DIR=<tmp>/node_modules/.bin \
#     cargo nextest run --run-ignored all -E 'test(/real_cli/)'
#
# Options:
#   --pin         after the tests pass, write the newest versions into
#                 tools/clis/package.json + package-lock.json (exact versions)
#                 and reinstall tools/clis/node_modules with `npm ci`.
#   --skip-tests  do not run the tests (with --pin: pin without testing).
#   --keep        keep the temporary directory and print its path.
#   -h, --help    show this help.
# Anything after `--` is passed on to `cargo nextest run`.
#
# Needs: node + npm (the npm registry), cargo, cargo-nextest.
# Exit status: 0 on success, the test run's status when the tests fail
# (nothing is pinned then), 2 on bad usage, 1 on any other failure.
set -euo pipefail

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; }

pin=0 skip_tests=0 keep=0
nextest_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --pin) pin=1 ;;
    --skip-tests) skip_tests=1 ;;
    --keep) keep=1 ;;
    -h | --help) usage; exit 0 ;;
    --) shift; nextest_args=("$@"); break ;;
    *) echo "update-real-clis: unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
clis="$repo/tools/clis"
for f in package.json package-lock.json; do
  [ -f "$clis/$f" ] || { echo "update-real-clis: missing $clis/$f" >&2; exit 1; }
done
command -v npm >/dev/null || { echo "update-real-clis: npm not found" >&2; exit 1; }
if [ "$skip_tests" -eq 0 ]; then
  command -v cargo >/dev/null || { echo "update-real-clis: cargo not found" >&2; exit 1; }
  cargo nextest --version >/dev/null 2>&1 || {
    echo "update-real-clis: cargo-nextest not found (cargo install cargo-nextest --locked)" >&2
    exit 1
  }
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/moonauth-clis.XXXXXX")
if [ "$keep" -eq 1 ]; then
  trap 'echo "update-real-clis: kept $tmp"' EXIT
else
  trap 'rm -rf "$tmp"' EXIT
fi
cp "$clis/package.json" "$clis/package-lock.json" "$tmp/"

# Version of an installed package, read from its package.json.
pkg_version() { # <node_modules dir> <package name>
  node -p "require(process.argv[1] + '/' + process.argv[2] + '/package.json').version" "$1" "$2" 2>/dev/null || echo "?"
}

echo "==> installing the newest CLIs into $tmp"
# Never pass --ignore-scripts: claude-code's postinstall puts the native binary
# in place of bin/claude.exe. The platform binaries of both CLIs are optional
# dependencies: never --omit=optional.
(cd "$tmp" && npm install --save-exact --no-audit --no-fund \
  @anthropic-ai/claude-code@latest @openai/codex@latest)

bin="$tmp/node_modules/.bin"
# If install scripts were disabled (npm config ignore-scripts=true), run
# claude-code's postinstall by hand so that `claude` is the real binary.
if ! "$bin/claude" --version </dev/null >/dev/null 2>&1; then
  echo "==> claude does not run; running its postinstall by hand"
  (cd "$tmp" && node node_modules/@anthropic-ai/claude-code/install.cjs)
fi

claude_out=$(timeout 60 "$bin/claude" --version </dev/null 2>&1) || {
  echo "update-real-clis: the newest claude does not run: $claude_out" >&2; exit 1; }
codex_out=$(timeout 60 "$bin/codex" --version </dev/null 2>&1) || {
  echo "update-real-clis: the newest codex does not run: $codex_out" >&2; exit 1; }

echo "==> versions"
printf '  %-26s pinned %-12s newest %-12s (%s)\n' \
  "@anthropic-ai/claude-code" "$(pkg_version "$clis/node_modules" @anthropic-ai/claude-code)" \
  "$(pkg_version "$tmp/node_modules" @anthropic-ai/claude-code)" "$claude_out"
printf '  %-26s pinned %-12s newest %-12s (%s)\n' \
  "@openai/codex" "$(pkg_version "$clis/node_modules" @openai/codex)" \
  "$(pkg_version "$tmp/node_modules" @openai/codex)" "$codex_out"
echo "  (pinned = what tools/clis/node_modules holds; '?' = not installed there: cd tools/clis && npm ci)"

if [ "$skip_tests" -eq 0 ]; then
  echo "==> running the real-CLI tests against $bin"
  status=0
  (cd "$repo" && MOONAUTH_CLI_BIN_DIR="$bin" \
    cargo nextest run --run-ignored all -E 'test(/real_cli/)' ${nextest_args[@]+"${nextest_args[@]}"}) || status=$?
  if [ "$status" -ne 0 ]; then
    echo "update-real-clis: the real-CLI tests FAILED against the newest CLIs (status $status)" >&2
    [ "$pin" -eq 1 ] && echo "update-real-clis: nothing was pinned" >&2
    exit "$status"
  fi
  echo "==> the real-CLI tests passed against the newest CLIs"
fi

if [ "$pin" -eq 1 ]; then
  echo "==> pinning the newest versions in $clis"
  cp "$tmp/package.json" "$clis/package.json"
  cp "$tmp/package-lock.json" "$clis/package-lock.json"
  (cd "$clis" && npm ci --no-audit --no-fund)
  echo "==> pinned; review and commit tools/clis/package.json and tools/clis/package-lock.json,"
  echo "    then re-check docs/real-cli-behaviour.md against the new versions"
fi
