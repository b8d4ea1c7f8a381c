#!/usr/bin/env bash
# Builds WuKongIM-shaped images from wkctl's own simulator (issue 15 §1), without a registry:
# a minimal root filesystem (the `wksim` binary, the shared libraries `ldd` lists, Debian's
# static busybox as /bin/sh and its applets, like upstream's Alpine image: no bash), turned
# into images with `docker import`, each carrying its version in ENV.
#
#   tests/docker/build-images.sh [WKSIM_BINARY]     (default: target/release/wksim)
#
# Tags: wukongim/wukongim:v2.0.10-20241221, :v2.1.2-20250120, :v2.2.5-20260422,
# :v2.1.2-crashloop (its node crash-loops), and wksim/brain:local (`wksim serve --external`).
# Without a Docker daemon it says so and exits 0 (the docker tests then fail under CI=true
# and skip locally).
set -euo pipefail

cd "$(dirname "$0")/../.."
bin="${1:-target/release/wksim}"
[[ -x "$bin" ]] || { echo "error: $bin not found; hint: cargo build --release --bin wksim" >&2; exit 1; }
if ! docker info >/dev/null 2>&1; then
    echo "build-images: no Docker daemon answers; images not built" >&2
    exit 0
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/wksim-images.XXXXXX")"
trap 'rm -rf "$work"' EXIT
root="$work/rootfs"
mkdir -p "$root"/{bin,usr/local/bin,root/wukongim,home,tmp,etc}
chmod 1777 "$root/tmp"

# busybox: Debian's busybox-static, fetched as a package file (not installed) when missing.
cache="${XDG_CACHE_HOME:-$HOME/.cache}/wksim-docker"
mkdir -p "$cache"
bb="$cache/busybox"
if [[ ! -x "$bb" ]]; then
    if command -v busybox >/dev/null && ! ldd "$(command -v busybox)" >/dev/null 2>&1; then
        cp "$(command -v busybox)" "$bb"          # already static
    else
        ( cd "$work" && { apt-get download busybox-static >/dev/null 2>&1 ||
            { [[ "$(id -u)" -eq 0 ]] && apt-get update -qq && apt-get download busybox-static >/dev/null; }; } )
        deb="$(ls "$work"/busybox-static_*.deb 2>/dev/null | head -1)"
        [[ -n "$deb" ]] || { echo "error: cannot get Debian's busybox-static; hint: apt-get install busybox-static" >&2; exit 1; }
        dpkg-deb -x "$deb" "$work/bb"
        cp "$work/bb/bin/busybox" "$bb"
    fi
fi
cp "$bb" "$root/bin/busybox"
for applet in $("$root/bin/busybox" --list); do
    [[ -e "$root/bin/$applet" ]] || ln -s busybox "$root/bin/$applet"
done

# wksim and its shared libraries, at the paths ldd names.
cp "$bin" "$root/usr/local/bin/wksim"
ldd "$bin" | grep -o '/[^ ]*' | while read -r lib; do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
done
echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
echo 'hosts: files dns' >"$root/etc/nsswitch.conf"
tar -C "$root" -cf "$work/rootfs.tar" .

import() { # TAG VERSION [FAULT] [ENTRYPOINT]
    local tag="$1" version="$2" fault="${3:-}" entry="${4:-[\"/usr/local/bin/wksim\",\"node\"]}"
    docker import \
        --change "ENV PATH=/usr/local/bin:/bin" \
        --change "ENV WKSIM_VERSION=$version" \
        --change "ENV WKSIM_FAULT=$fault" \
        --change "WORKDIR /home" \
        --change "ENTRYPOINT $entry" \
        --message "wksim image $tag" \
        "$work/rootfs.tar" "$tag" >/dev/null
    echo "built $tag"
}
import wukongim/wukongim:v2.0.10-20241221 v2.0.10-20241221
import wukongim/wukongim:v2.1.2-20250120 v2.1.2-20250120
import wukongim/wukongim:v2.2.5-20260422 v2.2.5-20260422
import wukongim/wukongim:v2.1.2-crashloop v2.1.2-20250120 crash-loop
import wksim/brain:local v2.0.10-20241221 "" '["/usr/local/bin/wksim","serve","--external"]'
