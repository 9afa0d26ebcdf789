#!/usr/bin/env bash
# Builds moonauth's local Docker test image (nothing is pulled): busybox-static with its
# applets in /bin, users root and app (1000:1000, home /home/app), the moonauth binary in
# /usr/local/bin with the shared libraries `ldd` lists (loader included) at their host
# paths, and the stand-in CLIs from tests/image/bin/ as /usr/local/bin/claude and codex.
#
# Usage: scripts/build-test-image.sh [--bin PATH] [--tag TAG] [--force]
#   --bin   moonauth binary (default: ${CARGO_TARGET_DIR:-<repo>/target}/debug/moonauth)
#   --tag   image tag (default: moonauth-test:latest)
#   --force rebuild even when an image with the same inputs exists
#
# Tests call this before every Docker test, so it returns at once when the image's
# label already holds the hash of the current inputs. Needs busybox-static
# (/bin/busybox, or $BUSYBOX) and a running Docker engine.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
image_dir="$repo/tests/image"
bin="${CARGO_TARGET_DIR:-$repo/target}/debug/moonauth"
tag="moonauth-test:latest"
force=0
label="org.moonauth.test-image.hash"

die() {
    echo "build-test-image: $*" >&2
    exit 1
}

while [[ $# -gt 0 ]]; do
    case "$1" in
        --bin) bin="${2:?--bin needs a path}"; shift 2 ;;
        --bin=*) bin="${1#--bin=}"; shift ;;
        --tag) tag="${2:?--tag needs a tag}"; shift 2 ;;
        --tag=*) tag="${1#--tag=}"; shift ;;
        --force) force=1; shift ;;
        -h | --help) sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac
done

busybox="${BUSYBOX:-/bin/busybox}"
[[ -x "$bin" ]] || die "no moonauth binary at $bin: run \`cargo build\` first, or pass --bin"
[[ -x "$busybox" ]] || die "no busybox at $busybox: install busybox-static (apt-get install busybox-static)"
if ldd "$busybox" >/dev/null 2>&1; then
    die "$busybox is dynamically linked: install busybox-static, or point BUSYBOX at a static busybox"
fi
command -v docker >/dev/null || die "docker CLI not found"

# The libraries the binary loads, one absolute path a line (none for a static binary).
libraries() {
    ldd "$bin" 2>/dev/null | while read -r line; do
        case "$line" in
            *"=> /"*) path="${line#*=> }" ;;
            /*) path="$line" ;;
            *) continue ;; # linux-vdso.so.1, "not a dynamic executable", "statically linked"
        esac
        echo "${path%% (*}"
    done
}

# Concurrent test binaries may call this at once: one builds, the others wait and find it done.
lock="${TMPDIR:-/tmp}/moonauth-test-image.lock"
if command -v flock >/dev/null; then
    exec 9>"$lock"
    flock 9
fi

mapfile -t libs < <(libraries)
hash="$(
    {
        sha256sum "$bin" "$busybox" "${libs[@]}" "$image_dir/Dockerfile" "$image_dir"/bin/* "${BASH_SOURCE[0]}" |
            awk '{print $1}'
        printf '%s\n' "${libs[@]}" "$tag"
    } | sha256sum | awk '{print $1}'
)"

if [[ "$force" == 0 ]]; then
    current="$(docker image inspect --format "{{ index .Config.Labels \"$label\" }}" "$tag" 2>/dev/null || true)"
    if [[ "$current" == "$hash" ]]; then
        echo "build-test-image: $tag is up to date"
        exit 0
    fi
fi

ctx="$(mktemp -d "${TMPDIR:-/tmp}/moonauth-test-image.XXXXXX")"
trap 'rm -rf "$ctx"' EXIT
root="$ctx/rootfs"
mkdir -p "$root"/{bin,etc,root,tmp,home/app,usr/bin,usr/local/bin}

cp "$busybox" "$root/bin/busybox"
for applet in $("$busybox" --list); do
    [[ "$applet" == busybox || -e "$root/bin/$applet" ]] || ln -s busybox "$root/bin/$applet"
done
ln -s /bin/busybox "$root/usr/bin/env"

cat >"$root/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
app:x:1000:1000:app:/home/app:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
PASSWD
cat >"$root/etc/group" <<'GROUP'
root:x:0:
app:x:1000:
nogroup:x:65534:
GROUP

install -m 0755 "$bin" "$root/usr/local/bin/moonauth"
for lib in "${libs[@]}"; do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
done
for cli in "$image_dir"/bin/*; do
    install -m 0755 "$cli" "$root/usr/local/bin/$(basename "$cli")"
done
cp "$image_dir/Dockerfile" "$ctx/Dockerfile"

echo "build-test-image: building $tag from $bin"
if ! docker build --build-arg "MOONAUTH_TEST_IMAGE_HASH=$hash" --tag "$tag" "$ctx" >"$ctx/build.log" 2>&1; then
    cat "$ctx/build.log" >&2
    die "docker build failed"
fi
docker image inspect --format '{{ .Id }}' "$tag"
