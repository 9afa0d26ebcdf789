#!/usr/bin/env bash
# Builds the static moonauth binary (x86_64-unknown-linux-musl), which runs in any Linux
# image whatever its C library, and optionally the image that carries only it.
#
#   scripts/build-static.sh                  # target/x86_64-unknown-linux-musl/release/moonauth
#   scripts/build-static.sh --image TAG      # also docker/Dockerfile.static as TAG (FROM scratch)
#
# Installs what it needs when missing: the rustup target and Debian's musl-tools (musl-gcc,
# for the C parts of the TLS stack). Prints the binary's path and size.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
target=x86_64-unknown-linux-musl
image=""
while [ $# -gt 0 ]; do
  case "$1" in
    --image) image="${2:?--image needs a tag}"; shift ;;
    --image=*) image="${1#--image=}" ;;
    -h | --help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "build-static: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo "$@"; else
    echo "build-static: needs root (or sudo) to run: $*" >&2; return 1; fi
}
if ! rustup target list --installed 2>/dev/null | grep -qx "$target"; then
  echo "build-static: adding the rustup target $target" >&2
  rustup target add "$target"
fi
if ! command -v musl-gcc >/dev/null 2>&1; then
  echo "build-static: installing musl-tools" >&2
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get update -qq
  as_root apt-get install -y -qq --no-install-recommends musl-tools >/dev/null
fi

cargo build --release --locked --target "$target"
bin="${CARGO_TARGET_DIR:-$repo/target}/$target/release/moonauth"
# A static-pie prints "statically linked"; a dynamic binary lists its libraries.
if ldd "$bin" 2>&1 | grep -q '=>'; then
  echo "build-static: $bin is dynamically linked" >&2
  exit 1
fi
echo "$bin $(stat -c %s "$bin") bytes"

if [ -n "$image" ]; then
  rel=${bin#"$repo"/}
  docker build -q -f docker/Dockerfile.static --build-arg MOONAUTH_BIN="$rel" -t "$image" . >/dev/null
  echo "image $image"
fi
